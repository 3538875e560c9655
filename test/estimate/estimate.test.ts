// The memory estimate: named configs parse to their published parameter counts, the
// prediction matches `ftune bench` runs (peak RSS within 15%, accounted activations within
// 5%), and `ftune estimate` prints one JSON object with the breakdown and assumptions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseFlags } from '../../src/cli/command.js';
import { estimateCommand } from '../../src/cli/commands/estimate.js';
import { PRESETS, presetConfig } from '../../src/bench/presets.js';
import { estimateMemory, type EstimateOptions } from '../../src/estimate/estimate.js';
import { paramCounts, quant4Bytes } from '../../src/estimate/shapes.js';
import { CONFIG_NAMES, namedConfig } from '../../src/models/configs/named.js';
import { ConfigError, FormatError, IoError } from '../../src/errors.js';
import { fixture } from '../helpers/data.js';

/** Acceptance bound of the issue: prediction within 15% of the measured peak RSS. */
const RSS_TOLERANCE = 0.15;
/** Activations are counted tensor by tensor, so they must match the accounting closely. */
const ACTIVATION_TOLERANCE = 0.05;

// Parameter counts as the Hub / papers state them (embeddings and lm_head included).
const PUBLISHED_PARAMS: Record<string, number> = {
  'llama-2-7b': 6_738_415_616,
  'llama-2-13b': 13_015_864_320,
  'llama-2-70b': 68_976_648_192,
  'llama-3-8b': 8_030_261_248,
  'mistral-7b': 7_241_732_096,
  'qwen2.5-0.5b': 494_032_768,
  'tinyllama-1.1b': 1_100_048_384,
  'smollm2-135m': 134_515_008,
};

test('named configs parse and give the published parameter counts', () => {
  assert.deepEqual([...CONFIG_NAMES].sort(), Object.keys(PUBLISHED_PARAMS).sort());
  for (const name of CONFIG_NAMES) assert.equal(paramCounts(namedConfig(name)).total, PUBLISHED_PARAMS[name], name);
  assert.equal(namedConfig('Llama-3-8B').ropeTheta, 500000);
  assert.equal(namedConfig('qwen2.5-0.5b').qkvBias, true);
  assert.throws(() => namedConfig('gpt-2'), ConfigError);
});

test('4-bit bytes: codes n/2 + u8 per 64-block + f32 per 256 blocks (double quant)', () => {
  const n = 4096 * 4096;
  assert.equal(quant4Bytes(n, { blocksize: 64, doubleQuant: true }), n / 2 + n / 64 + (n / 64 / 256) * 4);
  assert.equal(quant4Bytes(n, { blocksize: 64, doubleQuant: false }), n / 2 + (n / 64) * 4);
});

interface BenchResult {
  peak_rss_mib: number;
  accounted_peak_mib: { activations: number };
}

function bench(preset: string, method: EstimateOptions['method'], batch: number): BenchResult {
  const out = execFileSync(process.execPath, ['dist/src/cli/main.js', 'bench', '--preset', preset, '--method', method, '--batch', String(batch), '--steps', '1', '--warmup', '1'],
    // One thread: memory does not depend on it, and it keeps the runs quick on a busy machine.
    { encoding: 'utf8', env: { ...process.env, FTUNE_THREADS: '1' } });
  return JSON.parse(out) as BenchResult;
}

// Bench defaults: r 8, q,v targets, f32 matmuls, checkpointing for qlora only; one warm-up
// step as in docs/estimate.md (a single step peaks some 10-15 MiB lower: less JIT and heap).
const RUNS: Array<[string, EstimateOptions['method'], number]> = [
  ['tiny', 'full', 4], ['tiny', 'lora', 4], ['tiny', 'qlora', 4], ['small', 'lora', 1], ['small', 'qlora', 1],
];
for (const [preset, method, batch] of RUNS) {
  test(`estimate within 15% of ftune bench --preset ${preset} --method ${method} --batch ${batch}`, () => {
    const p = PRESETS[preset];
    assert.ok(p !== undefined);
    const measured = bench(preset, method, batch);
    const e = estimateMemory(presetConfig(p), { method, batch, seq: p.seq, r: 8, targetModules: ['q_proj', 'v_proj'], gradientCheckpointing: method === 'qlora', bf16: false });
    const rss = e.bytes.total / 2 ** 20;
    assert.ok(Math.abs(rss / measured.peak_rss_mib - 1) <= RSS_TOLERANCE, `predicted ${rss.toFixed(1)} MiB, measured ${measured.peak_rss_mib} MiB`);
    const act = e.bytes.activations / 2 ** 20;
    const actMeasured = measured.accounted_peak_mib.activations;
    assert.ok(Math.abs(act / actMeasured - 1) <= ACTIVATION_TOLERANCE, `activations predicted ${act.toFixed(1)} MiB, accounted ${actMeasured} MiB`);
  });
}

/** Runs the command in-process (main.ts runs itself on import), capturing both streams. */
async function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  await estimateCommand.run(parseFlags(estimateCommand, args), { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t) });
  return { code: 0, stdout, stderr };
}

test('ftune estimate: one JSON object with bytes, GiB, params and assumptions; a table on stderr', async () => {
  const r = await runCli(['--model', 'llama-2-7b', '--method', 'qlora', '--seq', '256']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { bytes: Record<string, number>; gib: Record<string, number>; params: Record<string, number>; assumptions: Record<string, unknown> };
  for (const k of ['runtime', 'weights', 'lora', 'grads', 'optimizer', 'activations', 'workspace', 'allocatorCache', 'total']) {
    assert.equal(typeof j.bytes[k], 'number', k);
    assert.equal(j.gib[k], Math.round(((j.bytes[k] ?? 0) / 2 ** 30) * 1000) / 1000, k);
  }
  assert.equal(j.params['quantized'], paramCounts(namedConfig('llama-2-7b')).linear);
  assert.equal(j.assumptions['gradient_checkpointing'], true);
  assert.equal(j.assumptions['seq'], 256);
  assert.match(r.stderr, /total \(peak RSS\)/);
});

test('ftune estimate --method all reads a model directory and a config.json path alike', async (t) => {
  const path = fixture(t, 'hf_models', 'stories260K-hf', 'config.json');
  if (path === undefined) return;
  const dir = await runCli(['--model', join(path, '..'), '--method', 'all']);
  const file = await runCli(['--model', path, '--method', 'all']);
  assert.equal(dir.code, 0, dir.stderr);
  const a = JSON.parse(dir.stdout) as { estimates: Record<string, { bytes: { total: number } }> };
  const b = JSON.parse(file.stdout) as { estimates: Record<string, { bytes: { total: number } }> };
  assert.deepEqual(Object.keys(a.estimates), ['full', 'lora', 'qlora']);
  assert.equal(a.estimates['full']?.bytes.total, b.estimates['full']?.bytes.total);
});

test('ftune estimate rejects an unknown model name, a bad config.json and a bad method', async () => {
  await assert.rejects(runCli(['--model', 'no-such-model', '--method', 'lora']), (e: Error) => e instanceof IoError && /llama-2-7b/.test(e.message));
  const dir = mkdtempSync(join(tmpdir(), 'ftune-estimate-'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'gpt2' }));
  await assert.rejects(runCli(['--model', dir]), (e: Error) => e instanceof FormatError && /model_type/.test(e.message));
  await assert.rejects(runCli(['--model', 'llama-2-7b', '--method', 'sgd']), ConfigError);
});
