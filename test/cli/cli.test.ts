// The ftune CLI end to end, as a user runs it: generate streams exactly prompt + text,
// convert-llama2c writes a directory equal to the shared HF copy, errors are clean.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { fixture } from '../helpers/data.js';
import { assertGoldens, loadGolden } from '../helpers/golden.js';

const CLI = resolve('dist/src/cli/main.js');

function ftune(args: string[], env: Record<string, string> = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('ftune generate: stdout is exactly the prompt and the greedy golden continuation', (t) => {
  const dir = fixture(t, 'hf_models', 'stories260K-hf');
  const goldenPath = fixture(t, 'llama2c', 'golden.json');
  if (dir === undefined || goldenPath === undefined) return;
  const golden = loadGolden(goldenPath).cases.find((c) => c.id === 'prompt_once_upon_a_time_64');
  assert.ok(golden);
  const r = ftune(['generate', '--model', dir, '--prompt', 'Once upon a time', '--temperature', '0', '--max-new-tokens', String(golden.hf_equivalent.max_new_tokens)]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, golden.expected_text);
  assert.match(r.stderr, /tokens\/s/);
});

test('ftune generate: sampling is reproducible with a seed and differs across seeds', (t) => {
  const dir = fixture(t, 'hf_models', 'stories260K-hf');
  if (dir === undefined) return;
  const run = (seed: string): string => ftune(['generate', '--model', dir, '--prompt', 'Lily', '--temperature', '1', '--top-p', '0.9', '--top-k', '40', '--seed', seed, '--max-new-tokens', '40']).stdout;
  const a = run('1');
  assert.ok(a.startsWith('Lily') && a.length > 'Lily'.length);
  assert.equal(run('1'), a);
  assert.notEqual(run('2'), a);
});

test('ftune convert-llama2c: tensors equal the shared HF copy and the goldens reproduce', async (t) => {
  const bin = fixture(t, 'llama2c', 'stories260K.bin');
  const tok = fixture(t, 'llama2c', 'tok512.bin');
  const hf = fixture(t, 'hf_models', 'stories260K-hf', 'model.safetensors');
  const goldenPath = fixture(t, 'llama2c', 'golden.json');
  if (bin === undefined || tok === undefined || hf === undefined || goldenPath === undefined) return;
  const root = mkdtempSync(join(tmpdir(), 'ftune-convert-'));
  try {
    const out = join(root, 'stories260K-converted');
    const r = ftune(['convert-llama2c', '--checkpoint', bin, '--tokenizer', tok, '--output', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readdirSync(out).sort(), ['config.json', 'generation_config.json', 'model.safetensors', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']);
    const mine = SafetensorsFile.open(join(out, 'model.safetensors'));
    const theirs = SafetensorsFile.open(hf);
    assert.deepEqual([...mine.tensors.keys()].sort(), [...theirs.tensors.keys()].sort());
    for (const [name, info] of theirs.tensors) {
      assert.deepEqual(mine.tensors.get(name)?.shape, info.shape, name);
      assert.deepEqual(mine.read(name), theirs.read(name), `${name} bytes`);
    }
    mine.close();
    theirs.close();
    await assertGoldens(out, loadGolden(goldenPath));
    const again = ftune(['convert-llama2c', '--checkpoint', bin, '--tokenizer', tok, '--output', out]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /exists and is not empty/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('ftune: bad input is a one-line error with a hint and exit code 1, no stack trace', (t) => {
  const missing = ftune(['generate', '--prompt', 'x']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /--model is required\nhint: /);
  const badDir = ftune(['generate', '--model', '/nonexistent/model', '--prompt', 'x']);
  assert.equal(badDir.code, 1);
  assert.doesNotMatch(badDir.stderr, /\n\s+at /);
  const badIsa = ftune(['generate', '--model', '/nonexistent/model'], { FTUNE_ISA: 'sse9' });
  assert.equal(badIsa.code, 1);
  assert.match(badIsa.stderr, /FTUNE_ISA=sse9 is not one of scalar, avx2, avx512/);
  const badFlag = ftune(['generate', '--temprature', '1']);
  assert.equal(badFlag.code, 1);
  assert.match(badFlag.stderr, /Unknown option '--temprature'/);
  const help = ftune(['generate', '--help']);
  assert.equal(help.code, 0);
  for (const flag of ['--model', '--prompt', '--max-new-tokens', '--temperature', '--top-k', '--top-p', '--seed', '--dtype', '--chat']) assert.match(help.stdout, new RegExp(flag));
  void t;
});
