// Hand-computed checks of the Llama forward ops (both backends, every ISA), causal
// masking, size-check failures (ShapeError from TypeScript, NativeError from the kernels,
// never a crash), and bit-identical repeat runs across thread counts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NativeError, ShapeError } from '../../src/errors.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { check, native } from '../../src/backend/native/addon.js';
import { nativeNn } from '../../src/backend/native/nn.js';
import { refNn } from '../../src/backend/ref/nn.js';
import type { NnOps } from '../../src/backend/backend.js';
import { Rng } from '../helpers/random.js';
import { eachBackend, eachIsa } from '../helpers/isa.js';

/** Runs fn with the reference backend and with the native one under every supported ISA. */
function everyBackend(fn: (ops: NnOps, name: string) => void): void {
  eachBackend(refNn, nativeNn, fn);
}

const f32 = (shape: number[], values: ArrayLike<number>): Tensor<'f32'> => Tensor.from(shape, 'f32', values);

test('rope at position 0 is the identity (exactly)', () => {
  const x = f32([2, 3, 2, 12], new Rng(10).normals(144));
  const invFreq = Float32Array.from({ length: 6 }, (_, j) => 1 / 10000 ** (j / 6));
  everyBackend((ops, name) => assert.deepEqual(ops.rope(x, new Int32Array(3), invFreq).data, x.data, name));
});

// One pair by the textbook formula in float64: (x1, x2) rotated by angle 3 * invFreq[j].
const ROPE_FORMULA_ATOL = 1e-6;
test('rope matches the direct formula for one element', () => {
  const x = f32([1, 1, 1, 4], [0.5, -1.25, 2, 0.75]);
  const invFreq = new Float32Array([1, 0.01]);
  const a0 = 3 * 1, a1 = Math.fround(3 * Math.fround(0.01));
  const want = [
    0.5 * Math.cos(a0) - 2 * Math.sin(a0),
    -1.25 * Math.cos(a1) - 0.75 * Math.sin(a1),
    2 * Math.cos(a0) + 0.5 * Math.sin(a0),
    0.75 * Math.cos(a1) + -1.25 * Math.sin(a1),
  ];
  everyBackend((ops, name) => {
    const got = ops.rope(x, new Int32Array([3]), invFreq).data;
    want.forEach((w, i) => assert.ok(Math.abs((got[i] ?? NaN) - w) <= ROPE_FORMULA_ATOL, `${name} [${i}]: ${got[i]} vs ${w}`));
  });
});

test('attention with T=1, S=1 returns v of the query head\'s kv head (exactly)', () => {
  const rng = new Rng(11);
  const q = f32([1, 1, 4, 8], rng.normals(32));
  const k = f32([1, 3, 2, 8], rng.normals(48));
  const v = f32([1, 3, 2, 8], rng.normals(48));
  // query heads 0, 1 use kv head 0; heads 2, 3 use kv head 1; cache row 0 only.
  const want = [0, 0, 1, 1].flatMap((g) => Array.from(v.data.subarray(g * 8, g * 8 + 8)));
  everyBackend((ops, name) => assert.deepEqual(Array.from(ops.attention(q, k, v, 1, 0.35).data), want, name));
});

test('attention is causal and ignores cache rows at and beyond S', () => {
  const rng = new Rng(12);
  const [B, T, H, Hkv, D, S, Smax] = [1, 13, 6, 2, 10, 18, 21];
  const q = f32([B, T, H, D], rng.normals(B * T * H * D));
  const k = f32([B, Smax, Hkv, D], rng.normals(B * Smax * Hkv * D));
  const v = f32([B, Smax, Hkv, D], rng.normals(B * Smax * Hkv * D));
  const row = Hkv * D; // floats per cache row
  // Changing key/value at position S - T + 5 = 10 may only change queries t >= 5.
  const k2 = f32(k.shape as number[], k.data), v2 = f32(v.shape as number[], v.data);
  for (let i = 10 * row; i < 11 * row; i++) {
    k2.data[i] = 3;
    v2.data[i] = -7;
  }
  // Rows S .. Smax-1 are not part of the cache yet: NaN there must not leak in.
  const kNan = f32(k.shape as number[], k.data), vNan = f32(v.shape as number[], v.data);
  kNan.data.fill(NaN, S * row);
  vNan.data.fill(NaN, S * row);
  everyBackend((ops, name) => {
    const base = ops.attention(q, k, v, S, 0.3).data;
    const changed = ops.attention(q, k2, v2, S, 0.3).data;
    const perT = H * D;
    assert.deepEqual(changed.subarray(0, 5 * perT), base.subarray(0, 5 * perT), `${name}: earlier queries changed`);
    for (let t = 5; t < T; t++) {
      assert.notDeepEqual(changed.subarray(t * perT, (t + 1) * perT), base.subarray(t * perT, (t + 1) * perT), `${name}: query ${t} ignored key 10`);
    }
    assert.deepEqual(ops.attention(q, kNan, vNan, S, 0.3).data, base, `${name}: rows >= S leaked`);
  });
});

// Row sums of float32 probabilities over 1001 entries.
const SOFTMAX_SUM_ATOL = 1e-5;
test('softmax rows sum to 1; temperature divides the logits', () => {
  const rng = new Rng(13);
  const x = f32([3, 1001], rng.normals(3003, 3));
  const halved = f32([3, 1001], x.data.map((a) => a / 2));
  everyBackend((ops, name) => {
    const p = ops.softmax(x, 2).data;
    for (let i = 0; i < 3; i++) {
      const sum = p.subarray(i * 1001, (i + 1) * 1001).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(sum - 1) <= SOFTMAX_SUM_ATOL, `${name} row ${i} sums to ${sum}`);
    }
    const q = ops.softmax(halved, 1).data;
    p.forEach((a, i) => assert.ok(Math.abs(a - (q[i] ?? NaN)) <= 1e-6 * (q[i] ?? 0) + 1e-12, `${name} [${i}]`));
    // -inf logits get probability 0; a single finite entry gets 1.
    assert.deepEqual(Array.from(ops.softmax(f32([1, 3], [-Infinity, 5, -Infinity]), 0.8).data), [0, 1, 0], name);
  });
});

test('argmax: first index on ties, first NaN wins, -inf rows give 0', () => {
  const x = f32([4, 4], [1, 3, 3, 2, -Infinity, -Infinity, -Infinity, -Infinity, 1, NaN, 5, NaN, -2, -1, -1, -3]);
  everyBackend((ops, name) => assert.deepEqual(Array.from(ops.argmax(x)), [1, 0, 1, 1], name));
});

test('shape and dtype mistakes raise ShapeError in both backends', () => {
  const a = f32([2, 6], new Float32Array(12));
  const b = f32([3, 4], new Float32Array(12));
  const q = f32([1, 2, 4, 6], new Float32Array(48));
  const kv = f32([1, 5, 3, 6], new Float32Array(90));
  const kv2 = f32([1, 5, 2, 6], new Float32Array(60));
  const ids = Tensor.from([2], 'i32', [0, 1]);
  for (const ops of [refNn, nativeNn]) {
    assert.throws(() => ops.add(a, b), ShapeError);
    assert.throws(() => ops.siluMul(a, b), ShapeError);
    assert.throws(() => ops.rmsnorm(a, f32([5], new Float32Array(5)), 1e-5), ShapeError);
    assert.throws(() => ops.rope(q, new Int32Array(2), new Float32Array(2)), ShapeError); // invFreq needs D/2 = 3
    assert.throws(() => ops.rope(q, new Int32Array(3), new Float32Array(3)), ShapeError); // T = 2 positions
    assert.throws(() => ops.rope(f32([1, 1, 1, 5], new Float32Array(5)), new Int32Array(1), new Float32Array(2)), ShapeError);
    assert.throws(() => ops.attention(q, kv, kv, 3, 1), ShapeError); // H=4 not a multiple of Hkv=3
    assert.throws(() => ops.attention(q, kv2, kv2, 1, 1), ShapeError); // S < T
    assert.throws(() => ops.attention(q, kv2, kv2, 6, 1), ShapeError); // S > Smax
    assert.throws(() => ops.attention(q, kv2, kv, 3, 1), ShapeError); // k, v differ
    assert.throws(() => ops.softmax(a, 0), ShapeError);
    assert.throws(() => ops.argmax(f32([2, 0], [])), ShapeError);
    assert.throws(() => ops.embedding(ids, Tensor.from([2, 2], 'i32', [0, 0, 0, 0])), ShapeError);
  }
});

test('out-of-range ids: NativeError (native) / ShapeError (ref), never a crash', () => {
  const table = f32([5, 3], new Float32Array(15));
  const bf = Tensor.zeros([5, 3], 'bf16');
  for (const bad of [5, -1, 2 ** 31 - 1]) {
    const ids = Tensor.from([3], 'i32', [0, bad, 1]);
    assert.throws(() => nativeNn.embedding(ids, table), NativeError);
    assert.throws(() => nativeNn.embedding(ids, bf), NativeError);
    assert.throws(() => refNn.embedding(ids, table), ShapeError);
  }
});

test('kernels reject buffers smaller than their dims (status 1) and bad dims (status 2)', () => {
  const addon = native();
  const small = new Float32Array(10), big = new Float32Array(1000), out = new Float32Array(1000);
  const statuses: [number, number][] = [
    [addon.opsRmsnormF32(small, big, out, 5, 67, 1e-5), 1],
    [addon.opsRmsnormF32(big, big, out, -1, 4, 1e-5), 2],
    [addon.opsAddF32(big, small, out, 100), 1],
    [addon.opsSiluMulF32(big, big, small, 100), 1],
    [addon.opsSoftmaxF32(big, small, 2, 100, 1), 1],
    [addon.opsSoftmaxF32(big, out, 2, 100, 0), 2],
    [addon.opsArgmaxF32(big, new Int32Array(1), 2, 100), 1],
    [addon.opsRopeF32(big, new Int32Array(1), new Float32Array(3), out, 1, 2, 4, 6), 1], // positions < T
    [addon.opsRopeF32(big, new Int32Array(2), new Float32Array(3), out, 1, 2, 4, 7), 2], // D odd
    [addon.opsAttentionF32(big, small, big, out, 1, 2, 4, 2, 6, 5, 3, 1, false), 1], // k < B*Smax*Hkv*D
    [addon.opsAttentionF32(big, big, big, out, 1, 2, 4, 2, 6, 5, 6, 1, false), 2], // S > Smax
    [addon.opsAttentionF32(big, big, big, out, 1, 4, 4, 2, 6, 5, 3, 1, false), 2], // T > S
    [addon.opsAttentionF32(big, big, big, out, 1, 2, 4, 3, 6, 5, 3, 1, false), 2], // H % Hkv
    [addon.opsAttentionF32(big, small, big, out, 1, 2, 4, 2, 6, 5, 3, 1, true), 1], // the bf16 path checks first too
    [addon.opsAttentionF32(big, big, big, out, 1, 4, 4, 2, 6, 5, 3, 1, true), 2],
    [addon.opsEmbeddingF32(new Int32Array([0, 1]), small, out, 2, 5, 3), 1], // table < V*C
    [addon.opsEmbeddingBf16(new Int32Array([0, 9]), new Uint16Array(15), out, 2, 5, 3), 2], // id >= V
    [addon.opsAddF32(big, big, out, 2 ** 53), 1], // huge n
    [addon.opsAttentionF32(big, big, big, out, 2 ** 31, 2, 4, 2, 2 ** 40, 5, 3, 1, false), 2], // B*T*H*D overflows
  ];
  statuses.forEach(([got, want], i) => assert.equal(got, want, `case ${i}`));
  assert.throws(() => check(statuses[0]?.[0] ?? 0, 'ops_rmsnorm_f32'), NativeError);
});

test('repeat runs are bit-identical, also across thread counts', () => {
  const rng = new Rng(14);
  const q = f32([2, 13, 6, 10], rng.normals(1560));
  const k = f32([2, 21, 2, 10], rng.normals(840));
  const v = f32([2, 21, 2, 10], rng.normals(840));
  const x = f32([40, 1001], rng.normals(40_040));
  const w = f32([1001], rng.normals(1001));
  const run = (): Float32Array[] => [
    nativeNn.attention(q, k, v, 18, 0.3).data,
    nativeNn.rmsnorm(x, w, 1e-6).data,
    nativeNn.softmax(x, 0.9).data,
    nativeNn.siluMul(x, x).data,
    nativeNn.rope(q, Int32Array.from({ length: 13 }, (_, i) => i + 5), Float32Array.from({ length: 5 }, (_, j) => 0.3 ** j)).data,
  ];
  const threads = native().threads();
  try {
    eachIsa((isa) => {
      const first = run();
      assert.deepEqual(run(), first, `${isa}: second run`);
      native().setThreads(1);
      assert.deepEqual(run(), first, `${isa}: one thread`);
      native().setThreads(threads);
    });
  } finally {
    native().setThreads(threads);
  }
});
