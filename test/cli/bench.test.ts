// `ftune bench` as a user runs it: one JSON line on stdout with the fields
// bench/RESULTS.md quotes, for a training step (QLoRA with checkpointing turned off) and
// for decoding with 4-bit weights and an unmerged adapter; bad flags are typed errors.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';

const CLI = resolve('dist/src/cli/main.js');

function bench(args: string[]): { code: number | null; json: Record<string, unknown> | undefined; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, 'bench', ...args], { encoding: 'utf8' });
  const lines = r.stdout.trim().split('\n');
  let json: Record<string, unknown> | undefined;
  try {
    json = lines.length === 1 ? (JSON.parse(lines[0] ?? '') as Record<string, unknown>) : undefined;
  } catch {
    json = undefined;
  }
  return { code: r.status, json, stderr: r.stderr };
}

test('bench: a QLoRA step with --no-gradient-checkpointing reports it, with memory by category', () => {
  const r = bench(['--preset', 'tiny', '--method', 'qlora', '--batch', '2', '--seq', '32', '--steps', '1', '--warmup', '0', '--no-gradient-checkpointing']);
  assert.equal(r.code, 0, r.stderr);
  const j = r.json ?? {};
  assert.equal(j['method'], 'qlora');
  assert.equal(j['gradient_checkpointing'], false);
  assert.ok(typeof j['tokens_per_s'] === 'number' && j['tokens_per_s'] > 0);
  assert.ok(typeof j['peak_rss_mib'] === 'number' && j['peak_rss_mib'] > 0);
  const acc = j['accounted_peak_mib'] as Record<string, number>;
  for (const k of ['weights', 'grads', 'optimizer', 'activations']) assert.ok(typeof acc[k] === 'number', k);
  assert.ok(Number.isFinite(j['first_loss']) && Number.isFinite(j['last_loss']));
});

test('bench --generate: NF4 weights with an unmerged adapter decode and report tokens/s', () => {
  const r = bench(['--generate', '--preset', 'tiny', '--weights', 'nf4', '--lora', 'unmerged', '--new-tokens', '8']);
  assert.equal(r.code, 0, r.stderr);
  const j = r.json ?? {};
  assert.equal(j['weights'], 'nf4');
  assert.equal(j['lora'], 'unmerged');
  assert.equal(j['new_tokens'], 8);
  assert.ok(typeof j['decode_tokens_per_s'] === 'number' && j['decode_tokens_per_s'] > 0);
});

test('bench: an unknown weight format is a typed error with a hint, nothing on stdout', () => {
  const r = bench(['--generate', '--preset', 'tiny', '--weights', 'int8']);
  assert.equal(r.code, 1);
  assert.equal(r.json, undefined);
  assert.match(r.stderr, /--weights int8 is not supported/);
  assert.match(r.stderr, /use f32, bf16 or nf4/);
});
