// Next-token choice: top-k and top-p keep exactly the tokens Transformers' warpers keep,
// draws follow the renormalised distribution, and a seed repeats a run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sampleFrom } from '../../src/generate/sampling.js';
import { Rng } from '../../src/util/rng.js';

const PROBS = Float32Array.from([0.05, 0.4, 0.1, 0.3, 0.15]); // sorted ids: 1, 3, 4, 2, 0

function counts(topK: number, topP: number, draws = 20000): number[] {
  const rng = new Rng(42);
  const c = [0, 0, 0, 0, 0];
  for (let i = 0; i < draws; i++) c[sampleFrom(PROBS, topK, topP, rng)]! += 1;
  return c.map((n) => n / draws);
}

test('top-k keeps the k most likely ids and renormalises', () => {
  const f = counts(2, 1);
  assert.deepEqual([f[0], f[2], f[4]], [0, 0, 0]);
  assert.ok(Math.abs((f[1] ?? 0) - 0.4 / 0.7) < 0.02);
  assert.ok(Math.abs((f[3] ?? 0) - 0.3 / 0.7) < 0.02);
});

test('top-p keeps the smallest prefix whose mass reaches p', () => {
  // 0.4 + 0.3 = 0.7 >= 0.7: ids 1 and 3 only; at p = 0.71 id 4 joins.
  assert.deepEqual(counts(0, 0.7).map((v) => v > 0), [false, true, false, true, false]);
  assert.deepEqual(counts(0, 0.71).map((v) => v > 0), [false, true, false, true, true]);
  // At least one token always survives.
  assert.deepEqual(counts(0, 0.01).map((v) => v > 0), [false, true, false, false, false]);
});

test('without limits draws follow the distribution; the same seed repeats', () => {
  const f = counts(0, 1, 40000);
  PROBS.forEach((p, i) => assert.ok(Math.abs((f[i] ?? 0) - p) < 0.01, `id ${i}: ${f[i]} vs ${p}`));
  const a = new Rng(7);
  const b = new Rng(7);
  for (let i = 0; i < 100; i++) assert.equal(sampleFrom(PROBS, 0, 1, a), sampleFrom(PROBS, 0, 1, b));
});
