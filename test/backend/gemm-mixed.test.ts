// Mixed-precision GEMM (gemmBf16Mixed, matmul/linear with one f32 and one bf16 operand,
// matmulBf16Into): an f32 operand is rounded to bf16 inside the product, so on every ISA
// the result must be bit-identical to casting it first (castF32ToBf16) and running the
// bf16 product; and close to the reference, which rounds the same way. Covers every
// orientation, accumulate and bias, the blocked driver's block edges, the small-M path,
// special values (ties, subnormals, NaN, inf); thread-count determinism is in gemm.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '../../src/tensor/tensor.js';
import { scope } from '../../src/tensor/scope.js';
import { check, native } from '../../src/backend/native/addon.js';
import { gemmInto, nativeGemm, type GemmSpec } from '../../src/backend/native/gemm.js';
import { f32ToBf16, refGemm, refGemmInto } from '../../src/backend/ref/gemm.js';
import { nativeQuant } from '../../src/backend/native/quant.js';
import { refQuant } from '../../src/backend/ref/quant.js';
import { nativeGrad } from '../../src/backend/native/grad.js';
import { refGrad } from '../../src/backend/ref/grad.js';
import { Rng } from '../helpers/random.js';
import { eachIsa } from '../helpers/isa.js';

/** bf16 products against the float64 reference: only the f32 accumulation differs (gemm.test.ts BF16_REL). */
const BF16_REL = 2e-5;

type Pair = ['f32' | 'bf16', 'f32' | 'bf16'];
const PAIRS: Pair[] = [['f32', 'bf16'], ['bf16', 'f32'], ['f32', 'f32']];

/** Values whose bf16 rounding is delicate: ties both ways, subnormals, the largest finite f32. */
function awkward(rng: Rng, n: number): Float32Array {
  const v = rng.normals(n);
  const u = new Uint32Array(v.buffer);
  for (let i = 0; i < n; i++) {
    const r = i % 5;
    if (r === 1) u[i] = ((u[i] ?? 0) & 0xffff0000) | 0x8000;  // exact tie
    if (r === 3) u[i] = ((u[i] ?? 0) & 0xffff0000) | 0x7fff;  // just below a tie
    if (i % 97 === 5) u[i] = 0x00012345;  // subnormal
  }
  return v;
}

function tensorOf(v: Float32Array, shape: number[], dtype: 'f32' | 'bf16'): Tensor {
  return dtype === 'f32' ? Tensor.from(shape, 'f32', v) : Tensor.from(shape, 'bf16', Array.from(v, f32ToBf16));
}

/** The bf16 copy castF32ToBf16 makes of an f32 tensor (bf16 tensors as they are). */
function castBf16(x: Tensor): Tensor<'bf16'> {
  if (x.dtype === 'bf16') return Tensor.from(x.shape, 'bf16', x.data);
  const y = Tensor.zeros(x.shape, 'bf16');
  const xd = x.data;
  if (!(xd instanceof Float32Array)) throw new Error('f32 expected');
  check(native().castF32ToBf16(xd, y.data, x.size), 'cast_f32_bf16');
  return y;
}

const bits = (x: Float32Array): Uint32Array => new Uint32Array(x.buffer, x.byteOffset, x.length);

// M, N, K: edges of the register tiles, the MC (336) / KC (1024) / NC (2048) blocks (a
// remainder under a quarter block joining the last full one: N = 2100, 4400), K = 0,
// odd K (zero-padded pairs), and small M in the linear orientation (the unpacked path).
const CASES: [number, number, number][] = [
  [1, 1, 1], [3, 5, 7], [17, 33, 31], [65, 129, 130], [350, 40, 300], [20, 40, 1100], [3, 2100, 20],
  [40, 17, 1025], [4, 3, 0], [5, 37, 45], [33, 7, 3], [3, 3100, 20], [3, 4400, 20],
];
const ORIENTATIONS: [boolean, boolean][] = [[false, false], [false, true], [true, false], [true, true]];

test('gemm bf16 mixed: bit-identical to cast-then-gemm and close to ref, every ISA, orientation, accumulate, bias', () => {
  const rng = new Rng(21);
  for (const [M, N, K] of CASES) {
    for (const [transA, transB] of ORIENTATIONS) {
      for (const [da, db] of PAIRS) {
        scope(() => {
          const sa = transA ? [K, M] : [M, K], sb = transB ? [N, K] : [K, N];
          const a = tensorOf(awkward(rng, M * K), sa, da), b = tensorOf(awkward(rng, K * N), sb, db);
          const ab = castBf16(a), bb = castBf16(b);
          const c0 = rng.normals(M * N), bias = Tensor.from([N], 'f32', rng.normals(N));
          // The float64 reference is slow in TS: the big cases check bit-identity only
          // (gemm.test.ts checks the bf16 product itself against the reference there).
          const withRef = M * N * K <= 200_000;
          // accumulate + bias alternate over the pairs (each orientation sees both).
          for (const accumulate of [(da === db) !== transA]) {
            const spec: GemmSpec = { M, N, K, transA, transB, accumulate };
            if (accumulate) spec.bias = bias;
            const want = Tensor.from([M, N], 'f32', c0);
            const bound = Tensor.from([M, N], 'f32', c0.map(Math.abs));
            if (withRef) {
              refGemmInto(want, a, b, spec, true);
              const absOf = (x: Tensor<'bf16'>): Tensor<'bf16'> => Tensor.from(x.shape, 'bf16', Array.from(x.data, (h) => h & 0x7fff));
              refGemmInto(bound, absOf(ab), absOf(bb), { ...spec, bias: accumulate ? Tensor.from([N], 'f32', bias.data.map(Math.abs)) : undefined });
            }
            eachIsa((isa) => {
              const what = `${isa} ${da}x${db} M=${M} N=${N} K=${K} transA=${transA} transB=${transB} acc+bias=${accumulate}`;
              const got = Tensor.from([M, N], 'f32', c0), cast = Tensor.from([M, N], 'f32', c0);
              gemmInto(got, a, b, spec, true);
              gemmInto(cast, ab, bb, spec);
              assert.deepEqual(bits(got.data), bits(cast.data), `${what}: differs from cast-then-gemm`);
              for (let i = 0; withRef && i < M * N; i++) {
                const g = got.data[i] ?? NaN, w = want.data[i] ?? NaN, tol = BF16_REL * (bound.data[i] ?? 0);
                // vdpbf16ps reads subnormal bf16 inputs as zero: allow their products' size too.
                if (!(Math.abs(g - w) <= tol + 1e-37)) assert.fail(`${what}: element ${i} is ${g}, want ${w}`);
              }
            });
          }
        });
      }
    }
  }
});

test('gemm bf16 mixed rounds exactly like the cast kernel: NaN, inf, ties (K = 1, b = 1)', () => {
  // c (M,1) = a (M,1) * 1: the product is the rounded a itself (-0 aside, which the sum
  // from +0 turns into +0); NaN stays NaN.
  const special = new Uint32Array([0x7fc00000, 0x7f800001, 0xff800000, 0x7f800000, 0x3f808000, 0x3f818000, 0x3f807fff,
    0x7f7fffff, 0xc0490fdb, 0x00000000, 0x3f800000]);
  const M = special.length;
  const a = Tensor.from([M, 1], 'f32', new Float32Array(special.buffer));
  const one = Tensor.from([1, 1], 'bf16', [0x3f80]);
  eachIsa((isa) => {
    const got = nativeGemm.matmul(a, one);
    const want = nativeGemm.matmul(castBf16(a), one);
    assert.deepEqual(bits(got.data), bits(want.data), isa);
    const cast = castBf16(a).data;
    for (let i = 0; i < M; i++) {
      const g = got.data[i] ?? 0;
      if (Number.isNaN(g)) assert.ok(((cast[i] ?? 0) & 0x7fff) > 0x7f80, `${isa} row ${i}`);
      else assert.equal(bits(got.data)[i], ((cast[i] ?? 0) << 16) >>> 0, `${isa} row ${i}`);
    }
  });
});

test('linear with bf16 w and matmulBf16Into: bit-identical to cast-then-gemm, small and large M', () => {
  const rng = new Rng(22);
  for (const M of [1, 3, 32, 33, 300]) {
    scope(() => {
      const K = 70, N = 45;
      const x = Tensor.from([M, K], 'f32', awkward(rng, M * K)), w = tensorOf(awkward(rng, N * K), [N, K], 'bf16');
      const bias = Tensor.from([N], 'f32', rng.normals(N));
      eachIsa((isa) => {
        const want = nativeGemm.linear(x, w, bias);  // f32 x with bf16 w
        const xb = castBf16(x);
        const cast = Tensor.from([M, N], 'f32', bias.data.length === N ? new Float32Array(M * N) : []);
        gemmInto(cast, xb, w, { M, N, K, transB: true, bias });
        assert.deepEqual(bits(want.data), bits(cast.data), `${isa} linear M=${M}`);
        assert.deepEqual(bits(refGemm.linear(x, w, bias).data).length, M * N);
        // dW = dY^T X with both f32: rounded while packing, as cast-then-matmul.
        const dy = Tensor.from([M, N], 'f32', awkward(rng, M * N));
        const dw = Tensor.from([N, K], 'f32', rng.normals(N * K));
        const dwCast = Tensor.from([N, K], 'f32', dw.data);
        nativeGemm.matmulBf16Into(dw, dy, x, { transA: true, accumulate: true });
        gemmInto(dwCast, castBf16(dy), xb, { M: N, N: K, K: M, transA: true, accumulate: true });
        assert.deepEqual(bits(dw.data), bits(dwCast.data), `${isa} dW M=${M}`);
        // The reference rounds the same way (float64 sums).
        const ref = Tensor.from([N, K], 'f32', new Float32Array(N * K));
        refGemm.matmulBf16Into(ref, dy, x, { transA: true });
        const plain = nativeGemm.matmul(castBf16(dy), xb, { transA: true });
        for (let i = 0; i < N * K; i++) assert.ok(Math.abs((ref.data[i] ?? 0) - (plain.data[i] ?? 0)) <= 1e-4, `${isa} ref dW ${i}`);
      });
    });
  }
});

test('gemmBf16Mixed checks buffer sizes (status 1) and dims (status 2)', () => {
  const n = native();
  const f = (k: number): Float32Array => new Float32Array(k), h = (k: number): Uint16Array => new Uint16Array(k);
  eachIsa(() => {
    assert.equal(n.gemmBf16Mixed(f(5), h(12), f(8), 2, 4, 3, false, false, false), 1);
    assert.equal(n.gemmBf16Mixed(h(6), f(11), f(8), 2, 4, 3, false, true, false), 1);
    assert.equal(n.gemmBf16Mixed(f(6), f(12), f(7), 2, 4, 3, true, false, true), 1);
    assert.equal(n.gemmBf16Mixed(f(6), h(12), f(8), -2, 4, 3, false, false, false), 2);
    assert.equal(n.gemmBf16Mixed(f(6), h(12), f(8), 2, 4, 3, false, false, false), 0);
  });
});

test('matmulMultiInto: each output is bit-identical to its own matmulBf16Into, on every ISA and in the reference', () => {
  const rng = new Rng(91);
  // [M, K, [N, transB, dtype of b, accumulate] per output]: a LoRA layer's forward
  // (x W^T, x A^T), its backward (dY W, dY B), panel edges (N 50, 16, 40), M not a
  // multiple of 14, K past one KC block, the small-M path, and transA.
  const cases: Array<[number, number, boolean, Array<[number, boolean, 'f32' | 'bf16', boolean]>]> = [
    [70, 96, false, [[64, true, 'bf16', false], [16, true, 'f32', false]]],
    [45, 1100, false, [[50, false, 'f32', false], [16, false, 'f32', true], [40, true, 'bf16', true]]],
    [3, 64, false, [[48, true, 'bf16', false], [8, true, 'f32', false]]],
    [33, 70, true, [[32, false, 'f32', false], [17, true, 'bf16', true]]],
  ];
  for (const [M, K, transA, outs] of cases) {
    for (const adt of ['f32', 'bf16'] as const) {
      scope(() => {
        const a = tensorOf(awkward(rng, M * K), transA ? [K, M] : [M, K], adt);
        const bs = outs.map(([N, tB, bdt]) => tensorOf(awkward(rng, N * K), tB ? [N, K] : [K, N], bdt));
        const init = outs.map(([N]) => rng.normals(M * N));
        for (const [name, ops, mops] of [['native', nativeGemm, nativeQuant], ['ref', refGemm, refQuant]] as const) {
          eachIsa((isa) => {
            const want = outs.map(([N, tB, , acc], s) => {
              const c = Tensor.from([M, N], 'f32', init[s] ?? []);
              ops.matmulBf16Into(c, a, bs[s] ?? a, { transA, transB: tB, accumulate: acc });
              return c;
            });
            const got = outs.map(([N], s) => Tensor.from([M, N], 'f32', init[s] ?? []));
            mops.matmulMultiInto(a, outs.map(([, tB, , acc], s) => ({ c: got[s] ?? a as Tensor<'f32'>, b: bs[s] ?? a, transB: tB, accumulate: acc })), { transA });
            got.forEach((g, s) => assert.deepEqual(g.data, want[s]?.data, `${name} ${isa} M=${M} K=${K} a=${adt} output ${s}`));
          });
        }
      });
    }
  }
  // Outputs must agree with a on M and K.
  const a = Tensor.zeros([4, 8], 'f32');
  assert.throws(() => nativeQuant.matmulMultiInto(a, [{ c: Tensor.zeros([4, 2], 'f32'), b: Tensor.zeros([2, 9], 'f32'), transB: true }]), /matmul|gemm/);
  assert.throws(() => nativeQuant.matmulMultiInto(a, []), /1 to 8/);
});

test('matmulMultiInto with a 4-bit output: bit-identical to linear4bit / linear4bitBackwardInput (bf16 compute) beside dense outputs', () => {
  const rng = new Rng(93);
  for (const [M, K, N] of [[70, 128, 96], [5, 64, 64]] as const) {  // blocked, and the small-M path
    scope(() => {
      const w = Tensor.from([N, K], 'f32', rng.normals(N * K, 0.05));
      const quant = nativeQuant.quantize4bit(w, { quantType: 'nf4', blocksize: 64, doubleQuant: true });
      const lora = { a: Tensor.from([16, K], 'f32', rng.normals(16 * K)), b: Tensor.from([N, 16], 'f32', rng.normals(N * 16)) };
      for (const [name, ops] of [['native', nativeQuant], ['ref', refQuant]] as const) {
        eachIsa((isa) => {
          // forward: x (M, K) -> x W^T (M, N) and x A^T (M, 16)
          const x = Tensor.from([M, K], 'f32', rng.normals(M * K));
          const y = Tensor.zeros([M, N], 'f32'), h = Tensor.zeros([M, 16], 'f32');
          ops.matmulMultiInto(x, [{ c: y, b: { quant, backward: false } }, { c: h, b: lora.a, transB: true }]);
          const wantY = ops.linear4bit(x, quant, undefined, 'bf16');
          const wantH = Tensor.zeros([M, 16], 'f32');
          (name === 'native' ? nativeGemm : refGemm).matmulBf16Into(wantH, x, lora.a, { transB: true });
          assert.deepEqual(y.data, wantY.data, `${name} ${isa} M=${M} forward 4-bit`);
          assert.deepEqual(h.data, wantH.data, `${name} ${isa} M=${M} forward dense`);
          // backward: dY (M, N) -> dY W (M, K) and dY B (M, 16)
          const dy = Tensor.from([M, N], 'f32', rng.normals(M * N));
          const dx = Tensor.zeros([M, K], 'f32'), u = Tensor.zeros([M, 16], 'f32');
          ops.matmulMultiInto(dy, [{ c: dx, b: { quant, backward: true } }, { c: u, b: lora.b }]);
          assert.deepEqual(dx.data, ops.linear4bitBackwardInput(dy, quant, 'bf16').data, `${name} ${isa} M=${M} backward 4-bit`);
        });
      }
      assert.throws(() => nativeQuant.matmulMultiInto(Tensor.zeros([M, K + 1], 'f32'), [{ c: Tensor.zeros([M, N], 'f32'), b: { quant, backward: false } }]), /do not fit the 4-bit W/);
    });
  }
});

test('matmulMultiInto with bf16 false: each output bit-identical to its own f32 matmulInto; bf16 or 4-bit operands refused', () => {
  const rng = new Rng(95);
  for (const [M, K, N1, N2, transA] of [[70, 96, 64, 16, false], [45, 1100, 50, 16, false], [3, 64, 48, 8, false], [33, 70, 32, 17, true]] as const) {
    scope(() => {
      const a = Tensor.from(transA ? [K, M] : [M, K], 'f32', rng.normals(M * K));
      const b1 = Tensor.from([N1, K], 'f32', rng.normals(N1 * K)), b2 = Tensor.from([K, N2], 'f32', rng.normals(K * N2));
      const c2init = rng.normals(M * N2);
      for (const [name, grad, mops] of [['native', nativeGrad, nativeQuant], ['ref', refGrad, refQuant]] as const) {
        eachIsa((isa) => {
          const w1 = Tensor.zeros([M, N1], 'f32'), w2 = Tensor.from([M, N2], 'f32', c2init);
          grad.matmulInto(w1, a, b1, { transA, transB: true });
          grad.matmulInto(w2, a, b2, { transA, accumulate: true });
          const g1 = Tensor.zeros([M, N1], 'f32'), g2 = Tensor.from([M, N2], 'f32', c2init);
          mops.matmulMultiInto(a, [{ c: g1, b: b1, transB: true }, { c: g2, b: b2, accumulate: true }], { transA, bf16: false });
          assert.deepEqual(g1.data, w1.data, `${name} ${isa} M=${M} K=${K} output 0`);
          assert.deepEqual(g2.data, w2.data, `${name} ${isa} M=${M} K=${K} output 1`);
        });
      }
    });
  }
  const a = Tensor.zeros([4, 8], 'f32');
  assert.throws(() => nativeQuant.matmulMultiInto(a, [{ c: Tensor.zeros([4, 2], 'f32'), b: Tensor.zeros([2, 8], 'bf16'), transB: true }], { bf16: false }), /f32 operands/);
});
