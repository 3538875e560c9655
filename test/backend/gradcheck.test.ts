// Finite-difference gradient checks of every backward op on the float64 reference
// backend: for L = <P, forward(inputs)> with a random projection P, the backward op fed
// dOut = P must give dL/d(input) (central differences, h = 1e-6, relative 1e-6: the
// difference's own error is ~1e-10 here, rounding, and ~1e-12, truncation).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '../../src/tensor/tensor.js';
import { scope } from '../../src/tensor/scope.js';
import { refGrad } from '../../src/backend/ref/grad.js';
import { refNnFloat } from '../../src/backend/ref/nn.js';
import { refGemmFloat } from '../../src/backend/ref/gemm.js';
import { nnChecks, refNnChecks } from '../../src/backend/nn-checks.js';
import { Rng } from '../helpers/random.js';
import { dot, gradcheck, normals64 } from '../helpers/gradcheck.js';

const f64 = (shape: number[], values: ArrayLike<number>): Tensor<'f64'> => Tensor.from(shape, 'f64', values);
const rand = (rng: Rng, shape: number[], std = 1): Tensor<'f64'> => f64(shape, normals64(rng, shape.reduce((a, b) => a * b, 1), std));
const GRAD_RTOL = 1e-6;

test('gradcheck: embedding (repeated ids scatter-add)', () => scope(() => {
  const rng = new Rng(100);
  const table = rand(rng, [11, 5]);
  const ids = Tensor.from([2, 3], 'i32', [3, 0, 3, 10, 7, 3]);
  const P = normals64(rng, 6 * 5);
  const dTable = f64([11, 5], new Float64Array(55));
  refGrad.embeddingBackward(ids, f64([2, 3, 5], P), dTable);
  gradcheck({ loss: () => dot(P, refNnFloat.embedding(ids, table).data), inputs: [{ name: 'table', t: table, grad: dTable.data }], rng, rtol: GRAD_RTOL });
}));

test('gradcheck: rmsnorm dx and dw', () => scope(() => {
  const rng = new Rng(101);
  const x = rand(rng, [4, 7], 2), w = rand(rng, [7]);
  const eps = 1e-5;
  const P = normals64(rng, 28);
  const dw = f64([7], normals64(rng, 7));
  const dw0 = Float64Array.from(dw.data);
  const dx = refGrad.rmsnormBackward(x, w, eps, f64([4, 7], P), dw);
  const dwOnly = dw.data.map((v, i) => v - (dw0[i] ?? 0)); // dw accumulates onto its old value
  gradcheck({
    loss: () => dot(P, refNnFloat.rmsnorm(x, w, eps).data),
    inputs: [{ name: 'x', t: x, grad: dx.data }, { name: 'w', t: w, grad: dwOnly }],
    rng, rtol: GRAD_RTOL,
  });
}));

test('gradcheck: rope (positions out of order)', () => scope(() => {
  const rng = new Rng(102);
  const x = rand(rng, [2, 3, 2, 6]);
  const positions = new Int32Array([7, 0, 3]);
  const invFreq = Float32Array.from({ length: 3 }, (_, j) => 1 / 100 ** (j / 3));
  const P = normals64(rng, x.size);
  const dx = refGrad.ropeBackward(f64(x.shape.slice(), P), positions, invFreq);
  gradcheck({ loss: () => dot(P, refNnFloat.rope(x, positions, invFreq).data), inputs: [{ name: 'x', t: x, grad: dx.data }], rng, rtol: GRAD_RTOL });
}));

test('gradcheck: attention dq, dk, dv (GQA and MHA, s < Smax, T = 1 and T > 1)', () => scope(() => {
  const rng = new Rng(103);
  for (const { B, T, H, Hkv, D, S, Smax } of [
    { B: 2, T: 3, H: 4, Hkv: 2, D: 4, S: 5, Smax: 7 },
    { B: 1, T: 1, H: 2, Hkv: 2, D: 6, S: 4, Smax: 4 },
  ]) {
    const q = rand(rng, [B, T, H, D]), k = rand(rng, [B, Smax, Hkv, D]), v = rand(rng, [B, Smax, Hkv, D]);
    const scale = 1 / Math.sqrt(D);
    const P = normals64(rng, q.size);
    const { dq, dk, dv } = refGrad.attentionBackward(q, k, v, S, scale, f64(q.shape.slice(), P));
    gradcheck({
      loss: () => dot(P, refNnFloat.attention(q, k, v, S, scale).data),
      inputs: [{ name: 'q', t: q, grad: dq.data }, { name: 'k', t: k, grad: dk.data }, { name: 'v', t: v, grad: dv.data }],
      rng, rtol: GRAD_RTOL, samples: 200,
    });
    // cache rows at or past s get no gradient
    for (let i = 0; i < dk.size; i++) {
      if (Math.floor(i / (Hkv * D)) % Smax >= S) assert.equal(dk.data[i], 0, `dk[${i}] past s`);
    }
  }
}));

test('gradcheck: siluMul d gate and d up', () => scope(() => {
  const rng = new Rng(104);
  const gate = rand(rng, [3, 9], 3), up = rand(rng, [3, 9]);
  const P = normals64(rng, 27);
  const { dGate, dUp } = refGrad.siluMulBackward(gate, up, f64([3, 9], P));
  gradcheck({
    loss: () => dot(P, refNnFloat.siluMul(gate, up).data),
    inputs: [{ name: 'gate', t: gate, grad: dGate.data }, { name: 'up', t: up, grad: dUp.data }],
    rng, rtol: GRAD_RTOL,
  });
}));

/** Mean over non-ignored rows of -log softmax(logits)[label], written out directly. */
function naiveCrossEntropy(logits: Float64Array, labels: Int32Array, V: number): { mean: number; rows: number[] } {
  const rows: number[] = [];
  let sum = 0, count = 0;
  labels.forEach((label, i) => {
    if (label === -100) return void rows.push(0);
    let z = 0;
    for (let j = 0; j < V; j++) z += Math.exp(logits[i * V + j] ?? 0);
    const l = -Math.log(Math.exp(logits[i * V + label] ?? 0) / z);
    rows.push(l);
    sum += l;
    count++;
  });
  return { mean: sum / count, rows };
}

// Per-row losses against the naive formula (no max subtraction there): float64 rounding.
const CE_LOSS_RTOL = 1e-13;
test('gradcheck: crossEntropy (mean over non-ignored rows, one row ignored)', () => scope(() => {
  const rng = new Rng(105);
  const N = 5, V = 7;
  const logits = rand(rng, [N, V], 2);
  const labels = new Int32Array([3, -100, 0, 6, 2]);
  const work = f64([N, V], logits.data);
  const losses = refGrad.crossEntropyInPlace(work, labels, 1 / 4);
  const naive = naiveCrossEntropy(logits.data, labels, V);
  naive.rows.forEach((l, i) => assert.ok(Math.abs((losses[i] ?? NaN) - l) <= CE_LOSS_RTOL * Math.max(1, l), `row ${i}: ${losses[i]} vs ${l}`));
  for (let j = 0; j < V; j++) assert.equal(work.data[V + j], 0, 'ignored row has zero gradient');
  gradcheck({ loss: () => naiveCrossEntropy(logits.data, labels, V).mean, inputs: [{ name: 'logits', t: logits, grad: work.data }], rng, rtol: GRAD_RTOL });
}));

test('gradcheck: linear via matmulInto (dx, dW) and sumRowsInto (db)', () => scope(() => {
  const rng = new Rng(106);
  const N = 4, K = 5, M = 3;
  const x = rand(rng, [N, K]), w = rand(rng, [M, K]), b = rand(rng, [M]);
  const P = f64([N, M], normals64(rng, N * M));
  const dx = f64([N, K], new Float64Array(N * K)), dw = f64([M, K], normals64(rng, M * K)), db = f64([M], new Float64Array(M));
  const dw0 = Float64Array.from(dw.data);
  refGrad.matmulInto(dx, P, w);                                        // dx (N,K) = P (N,M) W (M,K)
  refGrad.matmulInto(dw, P, x, { transA: true, accumulate: true });    // dW (M,K) += P^T (M,N) x (N,K)
  refGrad.sumRowsInto(db, P, false);                                   // db (M) = column sums of P
  gradcheck({
    loss: () => dot(P.data, refGemmFloat.linear(x, w, b).data),
    inputs: [
      { name: 'x', t: x, grad: dx.data },
      { name: 'w', t: w, grad: dw.data.map((v, i) => v - (dw0[i] ?? 0)) },
      { name: 'b', t: b, grad: db.data },
    ],
    rng, rtol: GRAD_RTOL,
  });
}));

test('gradcheck: dropout (fixed mask: backward is dropout of dOut with the same seed)', () => scope(() => {
  const rng = new Rng(107);
  const x = rand(rng, [6, 11]);
  const P = normals64(rng, x.size);
  const p = 0.4, seed = 1234;
  const dx = refGrad.dropout(f64(x.shape.slice(), P), p, seed);
  gradcheck({ loss: () => dot(P, refGrad.dropout(x, p, seed).data), inputs: [{ name: 'x', t: x, grad: dx.data }], rng, rtol: GRAD_RTOL });
}));

test('gradcheck: addScaled (d a = dOut, d b = s dOut)', () => scope(() => {
  const rng = new Rng(108);
  const a = rand(rng, [13]), b = rand(rng, [13]), s = -0.75;
  const P = normals64(rng, 13);
  gradcheck({
    loss: () => dot(P, refGrad.addScaled(a, b, s).data),
    inputs: [{ name: 'a', t: a, grad: P }, { name: 'b', t: b, grad: P.map((v) => s * v) }],
    rng, rtol: GRAD_RTOL,
  });
}));

// The f32 path rounds each output once to f32; the f64 path keeps float64.
const F64_VS_F32_RTOL = 1e-6, F64_VS_F32_ATOL = 1e-6;
test('reference forward ops take f64 (outputs f64, same values as f32 up to its rounding); native rejects f64 naming it', () => scope(() => {
  const rng = new Rng(109);
  const x32 = Tensor.from([2, 3, 2, 6], 'f32', rng.normals(72)), w32 = Tensor.from([6], 'f32', rng.normals(6));
  const x = f64([2, 3, 2, 6], x32.data), w = f64([6], w32.data);
  const invFreq = new Float32Array([1, 0.1, 0.01]), positions = new Int32Array([0, 5, 2]);
  const close = (a: ArrayLike<number>, b: ArrayLike<number>, what: string): void => {
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs((a[i] ?? 0) - (b[i] ?? 0)) <= F64_VS_F32_ATOL + F64_VS_F32_RTOL * Math.abs(b[i] ?? 0), `${what}[${i}]`);
  };
  const pairs: [string, Tensor, Tensor][] = [
    ['rmsnorm', refNnFloat.rmsnorm(x, w, 1e-5), refNnFloat.rmsnorm(x32, w32, 1e-5)],
    ['rope', refNnFloat.rope(x, positions, invFreq), refNnFloat.rope(x32, positions, invFreq)],
    ['attention', refNnFloat.attention(x, x, x, 3, 0.4), refNnFloat.attention(x32, x32, x32, 3, 0.4)],
    ['siluMul', refNnFloat.siluMul(x, x), refNnFloat.siluMul(x32, x32)],
    ['softmax', refNnFloat.softmax(x, 0.7), refNnFloat.softmax(x32, 0.7)],
    ['matmul', refGemmFloat.matmul(f64([12, 6], x.data), f64([6, 12], x.data)), refGemmFloat.matmul(Tensor.from([12, 6], 'f32', x32.data), Tensor.from([6, 12], 'f32', x32.data))],
  ];
  for (const [name, a, b] of pairs) {
    assert.equal(a.dtype, 'f64', name);
    assert.equal(b.dtype, 'f32', name);
    close(a.data, b.data, name);
  }
  assert.deepEqual(refNnFloat.argmax(x), refNnFloat.argmax(x32));
  // The checks each backend runs first (nativeNn.rmsnorm calls nnChecks.rmsnorm).
  assert.throws(() => refNnChecks.rmsnorm(x, w32, 1e-5), /share a dtype/);
  assert.throws(() => nnChecks.rmsnorm(x, w32, 1e-5), /rmsnorm: x is f64, expected f32/);
}));
