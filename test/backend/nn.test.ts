// Parity of the native Llama forward ops with the float64 reference (refNn) on seeded
// random inputs with odd sizes, under every ISA this CPU supports. Tolerances are named
// next to each test: they bound f32 rounding (and, where exp is involved, the 2-ulp
// polynomial exp of the SIMD variants) against the float64 specification.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '../../src/tensor/tensor.js';
import { nativeNn } from '../../src/backend/native/nn.js';
import { refNn } from '../../src/backend/ref/nn.js';
import { Rng } from '../helpers/random.js';
import { assertClose } from '../helpers/close.js';
import { eachIsa } from '../helpers/isa.js';

const f32 = (shape: number[], values: Float32Array): Tensor<'f32'> => Tensor.from(shape, 'f32', values);

test('embedding: f32 and bf16 tables, exact (a row copy / a 16-bit shift)', () => {
  const rng = new Rng(1);
  const V = 1001, C = 67;
  const table = f32([V, C], rng.normals(V * C));
  const bf = Tensor.from([V, C], 'bf16', Uint16Array.from(table.data, (x) => new Uint32Array(new Float32Array([x]).buffer)[0]! >>> 16));
  const ids = Tensor.from([13], 'i32', Int32Array.from({ length: 13 }, (_, i) => (i === 0 ? 0 : i === 1 ? V - 1 : rng.int(V))));
  eachIsa((isa) => {
    for (const t of [table, bf]) {
      const got = nativeNn.embedding(ids, t);
      assert.deepEqual(got.shape, [13, C]);
      assert.deepEqual(got.data, refNn.embedding(ids, t).data, `${isa} ${t.dtype}`);
    }
  });
});

// f32 sum of squares, rsqrt and two products vs float64: a few ulp.
const RMSNORM_RTOL = 4e-6, RMSNORM_ATOL = 1e-7;
test('rmsnorm: native matches reference (C=67, and a row set big enough to thread)', () => {
  const rng = new Rng(2);
  for (const [N, C] of [[5, 67], [9, 4099]] as const) {
    const x = f32([N, C], rng.normals(N * C, 3));
    const w = f32([C], rng.normals(C));
    const want = refNn.rmsnorm(x, w, 1e-5).data;
    eachIsa((isa) => assertClose(nativeNn.rmsnorm(x, w, 1e-5).data, want, RMSNORM_RTOL, RMSNORM_ATOL, `rmsnorm ${isa} ${N}x${C}`));
  }
});

// Angles are the same f32 products in both; cos/sin rounded to f32 and f32 products
// (possibly fused) vs float64: inputs are N(0,1), so an absolute bound.
const ROPE_ATOL = 2e-6;
test('rope: native matches reference (D=12 and D=10, positions out of order)', () => {
  const rng = new Rng(3);
  for (const [B, T, H, D] of [[2, 13, 6, 12], [1, 1, 4, 10], [2, 13, 4, 64]] as const) {
    const x = f32([B, T, H, D], rng.normals(B * T * H * D));
    const positions = Int32Array.from({ length: T }, () => rng.int(4096));
    const invFreq = Float32Array.from({ length: D / 2 }, (_, j) => 1 / 10000 ** ((2 * j) / D));
    const want = refNn.rope(x, positions, invFreq).data;
    eachIsa((isa) => assertClose(nativeNn.rope(x, positions, invFreq).data, want, 0, ROPE_ATOL, `rope ${isa} D=${D}`));
  }
});

// f32 dot products and weighted sums over <= 50 keys vs float64, on N(0,1) inputs.
const ATTENTION_ATOL = 2e-6;
test('attention: native matches reference (GQA and MHA, decode and prefill, Smax > S)', () => {
  const rng = new Rng(4);
  const cases = [
    { B: 2, H: 6, Hkv: 2, D: 10 },
    { B: 2, H: 4, Hkv: 4, D: 12 },
    { B: 1, H: 8, Hkv: 2, D: 64 },
  ];
  for (const { B, H, Hkv, D } of cases) {
    for (const T of [1, 13]) {
      const S = T + 5, Smax = S + 3;
      const q = f32([B, T, H, D], rng.normals(B * T * H * D));
      const k = f32([B, Smax, Hkv, D], rng.normals(B * Smax * Hkv * D));
      const v = f32([B, Smax, Hkv, D], rng.normals(B * Smax * Hkv * D));
      const scale = 1 / Math.sqrt(D);
      const want = refNn.attention(q, k, v, S, scale).data;
      eachIsa((isa) => {
        const got = nativeNn.attention(q, k, v, S, scale);
        assert.deepEqual(got.shape, [B, T, H, D]);
        assertClose(got.data, want, 0, ATTENTION_ATOL, `attention ${isa} H=${H} Hkv=${Hkv} D=${D} T=${T}`);
      });
    }
  }
});

// silu through a 2-ulp polynomial exp and an f32 divide vs float64.
const SILU_RTOL = 1e-6, SILU_ATOL = 1e-7;
test('siluMul and add: native matches reference (odd length, and one big enough to thread)', () => {
  const rng = new Rng(5);
  for (const n of [67 * 5, 40_009]) {
    const a = f32([n], rng.normals(n, 4));
    const b = f32([n], rng.normals(n));
    const silu = refNn.siluMul(a, b).data;
    const sum = refNn.add(a, b).data;
    eachIsa((isa) => {
      assertClose(nativeNn.siluMul(a, b).data, silu, SILU_RTOL, SILU_ATOL, `siluMul ${isa} n=${n}`);
      // a + b in f32 is correctly rounded, as is float64 a + b rounded to f32: exact.
      assert.deepEqual(nativeNn.add(a, b).data, sum, `add ${isa} n=${n}`);
    });
  }
});

// Every variant forms the exp argument (x - max) * (1/T) in f32: its rounding (half an ulp
// of |x - max| / T, here up to ~50) is a relative error of p up to ~4e-6 on the far tail;
// plus the 2-ulp SIMD exp and double-accumulated sums.
const SOFTMAX_RTOL = 1e-5, SOFTMAX_ATOL = 1e-12;
test('softmax: native matches reference (V=1001, temperatures 1 and 0.7; and V=32003)', () => {
  const rng = new Rng(6);
  for (const [N, V] of [[3, 1001], [2, 32_003]] as const) {
    const x = f32([N, V], rng.normals(N * V, 4));
    for (const temperature of [1, 0.7]) {
      const want = refNn.softmax(x, temperature).data;
      eachIsa((isa) => assertClose(nativeNn.softmax(x, temperature).data, want, SOFTMAX_RTOL, SOFTMAX_ATOL, `softmax ${isa} V=${V} T=${temperature}`));
    }
  }
});

test('argmax: native matches reference on random rows (V=1001)', () => {
  const rng = new Rng(7);
  const x = f32([7, 1001], rng.normals(7 * 1001));
  const want = refNn.argmax(x);
  eachIsa((isa) => assert.deepEqual(nativeNn.argmax(x), want, isa));
});

test('argmax: every ISA takes the first of tied maxima and the first NaN, in full and partial lanes', () => {
  const V = 41;
  const row = (set: Array<[number, number]>): number[] => {
    const r = new Array<number>(V).fill(0);
    for (const [i, v] of set) r[i] = v;
    return r;
  };
  const x = f32([6, V], Float32Array.from([
    ...row([[40, 1]]), ...row([[7, 2], [33, 2]]), ...row([[2, 5], [39, NaN]]), ...row([[17, NaN], [18, NaN], [1, 9]]),
    ...new Array<number>(V).fill(-Infinity), ...row([[0, -1], [16, 3], [32, 3]]),
  ]));
  eachIsa((isa) => assert.deepEqual(Array.from(nativeNn.argmax(x)), [40, 7, 39, 17, 0, 16], isa));
});
