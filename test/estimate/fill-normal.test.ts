// The native seeded normal fill that bench/7b-qlora.ts builds its synthetic weights from:
// the same seed gives the same values, moments match N(0, std^2), odd lengths are filled.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fillNormal } from '../../src/backend/native/addon-rand.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { ShapeError } from '../../src/errors.js';

/** 1e5 samples: the sample mean's standard error is std / 316, the variance's ~0.45%. */
const N = 100_001;
const MEAN_TOL = 5 / Math.sqrt(N);
const VAR_TOL = 0.03;

test('fillNormal is a function of (seed, index) with N(0, std^2) moments', () => {
  const a = fillNormal(Tensor.empty([N], 'f32', 'workspace'), 42, 0.5);
  const b = fillNormal(Tensor.empty([N], 'f32', 'workspace'), 42, 0.5);
  const c = fillNormal(Tensor.empty([N], 'f32', 'workspace'), 43, 0.5);
  assert.deepEqual(a.data, b.data);
  assert.notDeepEqual(a.data.subarray(0, 8), c.data.subarray(0, 8));
  let sum = 0;
  let sq = 0;
  for (const x of a.data) {
    assert.ok(Number.isFinite(x));
    sum += x;
    sq += x * x;
  }
  const mean = sum / N;
  assert.ok(Math.abs(mean / 0.5) < MEAN_TOL, `mean ${mean}`);
  assert.ok(Math.abs(sq / N / 0.25 - 1) < VAR_TOL, `variance ${sq / N}`);
  // A prefix of the same seed is the same values (element i depends on i only).
  const short = fillNormal(Tensor.empty([7], 'f32', 'workspace'), 42, 0.5);
  assert.deepEqual(short.data.subarray(0, 6), a.data.subarray(0, 6));
  assert.notEqual(short.data[6], 0);
  for (const t of [a, b, c, short]) t.release();
});

test('fillNormal rejects a negative or fractional seed', () => {
  const t = Tensor.empty([4], 'f32', 'workspace');
  assert.throws(() => fillNormal(t, -1, 1), ShapeError);
  assert.throws(() => fillNormal(t, 1.5, 1), ShapeError);
  t.release();
});
