// Properties of the backward ops beyond parity: cross-entropy over row chunks equals the
// whole, AdamW against a line-by-line transcription of torch.optim.AdamW, bit-identical
// results across thread counts, dropout statistics, and size / label errors that come
// back as status codes (NativeError), never a crash.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NativeError, ShapeError } from '../../src/errors.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { scope } from '../../src/tensor/scope.js';
import { native } from '../../src/backend/native/addon.js';
import { nativeGrad } from '../../src/backend/native/grad.js';
import { refGrad } from '../../src/backend/ref/grad.js';
import type { GradOps } from '../../src/backend/backend.js';
import { Rng } from '../helpers/random.js';
import { eachBackend, eachIsa } from '../helpers/isa.js';

/** Runs fn with the reference backend and with the native one under every supported ISA. */
function everyBackend(fn: (ops: GradOps, name: string) => void): void {
  eachBackend(refGrad, nativeGrad, fn);
}

/** fn's result with 1, 2 and 3 OpenMP threads (the thread count is restored). */
function withThreads<T>(fn: () => T): T[] {
  const threads = native().threads();
  try {
    return [1, 2, 3].map((n) => {
      native().setThreads(n);
      return fn();
    });
  } finally {
    native().setThreads(threads);
  }
}

const f32 = (shape: number[], values: ArrayLike<number>): Tensor<'f32'> => Tensor.from(shape, 'f32', values);

test('crossEntropyInPlace over 2 or 3 row chunks equals the whole (bits, every backend)', () => {
  const rng = new Rng(40);
  const N = 9, V = 1001;
  const logits = rng.normals(N * V, 2);
  const labels = Int32Array.from({ length: N }, (_, i) => (i === 4 ? -100 : rng.int(V)));
  everyBackend((ops, name) => {
    const whole = f32([N, V], logits);
    const wholeLoss = ops.crossEntropyInPlace(whole, labels, 1 / 8);
    for (const cuts of [[0, 5, 9], [0, 2, 7, 9]]) {
      const grads: number[] = [], losses: number[] = [];
      for (let c = 0; c + 1 < cuts.length; c++) {
        const a = cuts[c] ?? 0, b = cuts[c + 1] ?? 0;
        const chunk = f32([b - a, V], logits.subarray(a * V, b * V));
        losses.push(...ops.crossEntropyInPlace(chunk, labels.subarray(a, b), 1 / 8));
        grads.push(...chunk.data);
      }
      assert.deepEqual(Float64Array.from(losses), wholeLoss, `${name} losses ${cuts}`);
      assert.deepEqual(Float32Array.from(grads), whole.data, `${name} grads ${cuts}`);
    }
  });
});

/**
 * torch.optim.AdamW (_single_tensor_adamw, CPU, f32 params) transcribed line by line:
 * Python scalars in double, each tensor op rounded to f32 (Math.fround), scalars rounded
 * to f32 where they meet a tensor.
 */
function torchAdamw(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, h: { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; step: number; gradScale: number }): void {
  const F = Math.fround;
  const bc1 = 1 - h.beta1 ** h.step, bc2 = 1 - h.beta2 ** h.step;
  const stepSize = h.lr / bc1, bc2Sqrt = Math.sqrt(bc2);
  for (let i = 0; i < p.length; i++) {
    const gi = F((g[i] ?? 0) * F(h.gradScale));                                   // grad.mul_(clip)
    p[i] = F((p[i] ?? 0) * F(1 - h.lr * h.weightDecay));                          // param.mul_(1 - lr wd)
    m[i] = F(F(F(h.beta1) * (m[i] ?? 0)) + F(F(1 - h.beta1) * gi));                // exp_avg: b1 m + (1 - b1) g
    v[i] = F(F(F(h.beta2) * (v[i] ?? 0)) + F(F(F(1 - h.beta2) * gi) * gi));        // exp_avg_sq.mul_(b2).addcmul_(g, g, 1 - b2)
    const denom = F(F(F(Math.sqrt(v[i] ?? 0)) / F(bc2Sqrt)) + F(h.eps));            // (sqrt(v) / bc2_sqrt).add_(eps)
    p[i] = F((p[i] ?? 0) + F(F(F(-stepSize) * (m[i] ?? 0)) / denom));              // param.addcdiv_(m, denom, -step_size)
  }
}

test('adamw: native equals a transcription of torch.optim.AdamW exactly over 4 steps (every ISA)', () => {
  const rng = new Rng(41);
  const n = 37;
  const p0 = rng.normals(n), grads = [0, 1, 2, 3].map(() => rng.normals(n));
  const h = { lr: 0.01, beta1: 0.9, beta2: 0.95, eps: 1e-6, weightDecay: 0.1, gradScale: 0.7 };
  const p = Float32Array.from(p0), m = new Float32Array(n), v = new Float32Array(n);
  grads.forEach((g, i) => torchAdamw(p, g, m, v, { ...h, step: i + 1 }));
  everyBackend((ops, name) => {
    if (name === 'ref') return; // float64 arithmetic: compared within a tolerance in grad.test.ts
    const tp = f32([n], p0), tm = f32([n], new Float32Array(n)), tv = f32([n], new Float32Array(n));
    grads.forEach((g, i) => ops.adamw(tp, f32([n], g), tm, tv, { ...h, step: i + 1 }));
    assert.deepEqual(tp.data, p, `${name} param`);
    assert.deepEqual(tm.data, m, `${name} m`);
    assert.deepEqual(tv.data, v, `${name} v`);
  });
});

test('adamw: weight decay and bias correction are visible (step 1)', () => {
  everyBackend((ops, name) => {
    const h = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.5, step: 1, gradScale: 1 };
    // Zero gradient: only the decay acts, param * (1 - lr wd).
    const p = f32([2], [2, -4]), z = f32([2], [0, 0]);
    ops.adamw(p, z, f32([2], [0, 0]), f32([2], [0, 0]), h);
    assert.deepEqual(Array.from(p.data), [Math.fround(2 * 0.995), Math.fround(-4 * 0.995)], `${name} decay`);
    // No decay, step 1: bias correction makes the update lr * sign(g) (up to eps).
    const q = f32([2], [1, 1]);
    ops.adamw(q, f32([2], [3e-3, -50]), f32([2], [0, 0]), f32([2], [0, 0]), { ...h, weightDecay: 0 });
    assert.ok(Math.abs((q.data[0] ?? 0) - 0.99) < 1e-6 && Math.abs((q.data[1] ?? 0) - 1.01) < 1e-6, `${name} step 1: ${Array.from(q.data)}`);
  });
});

test('sumSquares, attention / embedding / rmsnorm backward: bit-identical across runs and 1, 2, 3 threads', () => {
  const rng = new Rng(42);
  const x = f32([1_000_003], rng.normals(1_000_003));
  const B = 2, T = 13, H = 6, Hkv = 2, D = 10, S = 18;
  const q = f32([B, T, H, D], rng.normals(B * T * H * D)), dy = f32([B, T, H, D], rng.normals(B * T * H * D));
  const k = f32([B, S, Hkv, D], rng.normals(B * S * Hkv * D)), v = f32([B, S, Hkv, D], rng.normals(B * S * Hkv * D));
  const ids = Tensor.from([700], 'i32', Int32Array.from({ length: 700 }, () => rng.int(50)));
  const dOut = f32([700, 67], rng.normals(700 * 67));
  const rx = f32([700, 67], rng.normals(700 * 67)), rw = f32([67], rng.normals(67));
  eachIsa((isa) => {
    const runs = withThreads(() => scope(() => {
      const a = nativeGrad.attentionBackward(q, k, v, S, 0.3, dy);
      const table = f32([50, 67], new Float32Array(50 * 67));
      nativeGrad.embeddingBackward(ids, dOut, table);
      const dw = f32([67], new Float32Array(67));
      const dx = nativeGrad.rmsnormBackward(rx, rw, 1e-6, dOut, dw);
      return [nativeGrad.sumSquares(x), ...[a.dq, a.dk, a.dv, table, dx, dw].map((t) => Array.from(t.data))];
    }));
    for (const r of runs.slice(1)) assert.deepEqual(r, runs[0], isa);
    assert.deepEqual(withThreads(() => nativeGrad.sumSquares(x)), [runs[0]?.[0], runs[0]?.[0], runs[0]?.[0]], `${isa} repeat`);
  });
});

test('dropout: kept fraction ~ 1 - p, p = 0 is the identity, the seed picks the mask', () => {
  const rng = new Rng(43);
  const n = 100_000;
  const x = f32([n], Float32Array.from(rng.normals(n), (v) => (v === 0 ? 1 : v)));
  everyBackend((ops, name) => {
    if (name === 'ref') return; // BigInt hashing of 1e5 elements is slow; parity covers ref
    assert.deepEqual(ops.dropout(x, 0, 9).data, x.data, `${name} p=0`);
    const a = Array.from(ops.dropout(x, 0.3, 9).data), b = Array.from(ops.dropout(x, 0.3, 10).data);
    const kept = a.filter((y) => y !== 0).length / n;
    // Binomial: sd = sqrt(0.21 / 1e5) ~ 0.0015; 5 sd.
    assert.ok(Math.abs(kept - 0.7) < 0.0073, `${name} kept ${kept}`);
    const scale = Math.fround(1 / 0.7);
    a.forEach((y, i) => y !== 0 && assert.equal(y, Math.fround((x.data[i] ?? 0) * scale), `${name} kept value at ${i}`));
    const same = a.filter((y, i) => (y !== 0) === (b[i] !== 0)).length / n;
    assert.ok(same < 0.65, `${name} seeds 9 and 10 agree on ${same} of the mask (independent: 0.58)`);
  });
});

test('kernels reject small buffers (status 1), bad dims and labels (status 2); wrappers throw typed errors', () => {
  const a = native();
  const f = (n: number): Float32Array => new Float32Array(n);
  const statuses: [number, number][] = [
    [a.gradSumRowsF32(f(5), f(3), 2, 3, false), 1],
    [a.gradSumRowsF32(f(6), f(3), -2, 3, false), 2],
    [a.gradEmbeddingBwdF32(new Int32Array([0, 4]), f(6), f(12), 2, 4, 3), 2],
    [a.gradEmbeddingBwdF32(new Int32Array([0, 1]), f(5), f(12), 2, 4, 3), 1],
    [a.gradRmsnormBwdF32(f(6), f(3), f(6), f(5), null, 2, 3, 1e-5, false), 1],
    [a.gradRmsnormBwdF32(f(6), f(3), f(6), f(5), null, 2, 3, 1e-5, true), 1],
    [a.gradRmsnormBwdF32(f(6), f(3), f(6), f(6), f(2), 2, 3, 1e-5, false), 1],
    [a.gradRmsnormBwdF32(f(6), f(3), f(6), f(6), null, 2, 3, -1, false), 2],
    [a.gradRopeBwdF32(f(12), new Int32Array(1), f(1), f(12), 1, 1, 2, 6), 1],
    [a.gradRopeBwdF32(f(10), new Int32Array(1), f(3), f(10), 1, 1, 2, 5), 2],
    [a.gradAttentionBwdF32(f(8), f(16), f(16), f(8), f(8), f(15), f(16), 1, 1, 2, 2, 4, 2, 2, 0.5, false), 1],
    [a.gradAttentionBwdF32(f(8), f(16), f(16), f(8), f(8), f(16), f(16), 1, 1, 2, 2, 4, 2, 3, 0.5, false), 2],
    [a.gradAttentionBwdF32(f(12), f(16), f(16), f(12), f(12), f(16), f(16), 1, 1, 3, 2, 4, 2, 2, 0.5, false), 2],
    [a.gradAttentionBwdF32(f(8), f(16), f(16), f(8), f(8), f(15), f(16), 1, 1, 2, 2, 4, 2, 2, 0.5, true), 1], // the bf16 path checks first too
    [a.gradSiluMulBwdF32(f(4), f(4), f(4), f(4), f(3), 4), 1],
    [a.gradCrossEntropyF32(f(6), new Int32Array([0, 3]), new Float64Array(2), 2, 3, 1), 2],
    [a.gradCrossEntropyF32(f(6), new Int32Array([0, -1]), new Float64Array(2), 2, 3, 1), 2],
    [a.gradCrossEntropyF32(f(6), new Int32Array([0, 1]), new Float64Array(1), 2, 3, 1), 1],
    [a.gradDropoutF32(f(4), f(4), 4, 1, 0), 2],
    [a.gradDropoutF32(f(4), f(3), 4, 0.5, 0), 1],
    [a.gradAddScaledF32(f(4), f(3), f(4), 4, 1), 1],
    [a.gradScaleF32(f(3), 4, 1), 1],
    [a.gradSumSquaresF32(f(3), 4, new Float64Array(1)), 1],
    [a.gradSumSquaresF32(f(3), 3, new Float64Array(0)), 1],
    [a.gradAdamwF32(f(4), f(4), f(4), f(3), 4, 1e-3, 0.9, 0.999, 1e-8, 0, 1, 1), 1],
    [a.gradAdamwF32(f(4), f(4), f(4), f(4), 4, 1e-3, 0.9, 0.999, 1e-8, 0, 0, 1), 2],
  ];
  statuses.forEach(([got, want], i) => assert.equal(got, want, `case ${i}`));
  // A bad label leaves the logits untouched (checked before anything is written).
  const logits = new Float32Array([1, 2, 3, 4, 5, 6]);
  a.gradCrossEntropyF32(logits, new Int32Array([0, 7]), new Float64Array(2), 2, 3, 1);
  assert.deepEqual(Array.from(logits), [1, 2, 3, 4, 5, 6]);
  scope(() => {
    assert.throws(() => nativeGrad.crossEntropyInPlace(f32([2, 3], [1, 2, 3, 4, 5, 6]), new Int32Array([0, 3]), 1), NativeError);
    assert.throws(() => refGrad.crossEntropyInPlace(f32([2, 3], [1, 2, 3, 4, 5, 6]), new Int32Array([0, 3]), 1), ShapeError);
    assert.throws(() => nativeGrad.embeddingBackward(Tensor.from([1], 'i32', [9]), f32([1, 3], [1, 2, 3]), f32([4, 3], new Float32Array(12))), NativeError);
    const x64 = Tensor.from([2, 3], 'f64', [1, 2, 3, 4, 5, 6]);
    assert.throws(() => nativeGrad.scaleInPlace(x64, 2), /ShapeError|f64/);
    assert.throws(() => nativeGrad.sumSquares(x64), ShapeError);
    assert.throws(() => refGrad.addScaled(x64, f32([2, 3], [1, 2, 3, 4, 5, 6]), 1), /share a dtype/);
    assert.throws(() => nativeGrad.siluMulBackward(f32([3], [1, 2, 3]), f32([3], [1, 2, 3]), f32([2], [1, 2])), ShapeError);
    assert.throws(() => nativeGrad.dropout(f32([1], [1]), 1, 0), ShapeError);
    assert.throws(() => nativeGrad.adamw(f32([1], [1]), f32([1], [1]), f32([1], [0]), f32([1], [0]), { lr: 1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, step: 0, gradScale: 1 }), ShapeError);
    assert.throws(() => nativeGrad.matmulInto(Tensor.from([1, 1], 'f64', [0]), f32([1, 1], [1]), f32([1, 1], [1])), ShapeError);
  });
});
