// `ftune compare` end to end on stories260K-hf with a slice of the Alpaca demo set: the
// three methods train on the same batches, every column of the table holds a measured
// value, the QLoRA/LoRA and LoRA/full eval losses are within 5% or the report states the
// difference and why, and the three report files are written.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fixture } from '../helpers/data.js';

const CLI = resolve('dist/src/cli/main.js');

interface Row { instruction: string; input: string; output: string }

test('compare full,lora,qlora on stories260K: every column measured, gaps within 5% or explained', (t) => {
  const model = fixture(t, 'hf_models', 'stories260K-hf');
  const alpaca = fixture(t, 'datasets', 'alpaca_en_demo.json');
  if (model === undefined || alpaca === undefined) return;
  const root = mkdtempSync(join(tmpdir(), 'ftune-compare-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  // Short rows, so prompt + answer fit in --max-length 256 stories260K tokens.
  const rows = (JSON.parse(readFileSync(alpaca, 'utf8')) as Row[]).filter((r) => r.instruction.length + r.input.length + r.output.length < 300);
  const train = join(root, 'train.json'), evalPath = join(root, 'eval.json'), out = join(root, 'out');
  writeFileSync(train, JSON.stringify(rows.slice(0, 32)));
  writeFileSync(evalPath, JSON.stringify(rows.slice(32, 38)));
  const r = spawnSync(process.execPath, [CLI, 'compare', '--model', model, '--data', train, '--eval-data', evalPath, '--max-steps', '6', '--batch-size', '4',
    '--max-length', '256', '--lr', '5e-3', '--full-lr', '1e-3', '--target-modules', 'all-linear', '--exact-match-rows', '3', '--gen-tokens', '12', '--output', out], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim().split('\n').length, 5, `header, rule and three rows:\n${r.stdout}`);

  const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as { methods: Array<Record<string, unknown>>; gaps: Array<Record<string, unknown>> };
  assert.deepEqual(report.methods.map((m) => m['method']), ['full', 'lora', 'qlora']);
  for (const m of report.methods) {
    const name = String(m['method']);
    for (const k of ['trainable_params', 'total_params', 'peak_rss_mib', 'tokens_per_second', 'wall_seconds', 'final_train_loss', 'eval_loss', 'eval_perplexity', 'size_on_disk_bytes', 'gen_tokens_per_second_unmerged']) {
      const v = m[k];
      assert.ok(typeof v === 'number' && Number.isFinite(v) && v > 0, `${name}.${k} = ${String(v)}`);
    }
    const em = m['exact_match'] as { rows: number; accuracy: number };
    assert.equal(em.rows, 3, `${name}: exact match scored on 3 rows`);
    assert.ok(em.accuracy >= 0 && em.accuracy <= 1);
    assert.equal((m['loss_curve'] as unknown[]).length, 6, `${name}: a loss point per step`);
    const merged = m['gen_tokens_per_second_merged'];
    if (name === 'full') assert.equal(merged, null);
    else assert.ok(typeof merged === 'number' && merged > 0, `${name}: merged generation speed`);
  }
  const [full, lora, qlora] = report.methods;
  assert.equal(full?.['trainable_params'], full?.['total_params']);
  assert.equal(lora?.['trainable_params'], qlora?.['trainable_params'], 'same adapters on both bases');
  assert.ok(Number(lora?.['size_on_disk_bytes']) < Number(full?.['size_on_disk_bytes']) / 3, 'an adapter is much smaller than the model');

  const md = readFileSync(join(out, 'report.md'), 'utf8');
  assert.equal(report.gaps.length, 2);
  for (const g of report.gaps) {
    t.diagnostic(String(g['explanation']));
    if (g['within_tolerance'] !== true) assert.match(String(g['explanation']), /outside 5%\. .{40,}/, 'a gap outside 5% is explained');
    assert.ok(md.includes(String(g['explanation'])), 'report.md states each gap');
  }
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.equal(html.match(/<svg class="chart"/g)?.length, 4);
});
