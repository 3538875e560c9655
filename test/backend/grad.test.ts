// Parity of the native backward ops with the float64 reference (refGrad) on seeded random
// f32 inputs with odd sizes, under every ISA this CPU supports. Tolerances are named next
// to each test and bound f32 rounding (and the 2-ulp polynomial exp of the SIMD variants)
// against the float64 specification.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '../../src/tensor/tensor.js';
import { nativeGrad } from '../../src/backend/native/grad.js';
import { refGrad } from '../../src/backend/ref/grad.js';
import { refNn } from '../../src/backend/ref/nn.js';
import { nativeNn } from '../../src/backend/native/nn.js';
import { nativeGemm } from '../../src/backend/native/gemm.js';
import { refGemm } from '../../src/backend/ref/gemm.js';
import { ShapeError } from '../../src/errors.js';
import { Rng } from '../helpers/random.js';
import { assertClose } from '../helpers/close.js';
import { eachIsa, withThreads } from '../helpers/isa.js';

const f32 = (shape: number[], values: ArrayLike<number>): Tensor<'f32'> => Tensor.from(shape, 'f32', values);
const copy = (t: Tensor<'f32'>): Tensor<'f32'> => f32(t.shape.slice(), t.data);

// f32 products summed over K <= 67 terms vs float64, N(0,1) inputs.
const MATMUL_ATOL = 2e-5;
test('matmulInto: native (gemm kernels) matches reference, transposes and accumulate', () => {
  const rng = new Rng(20);
  const N = 13, K = 67, M = 10;
  const x = f32([N, K], rng.normals(N * K)), dy = f32([N, M], rng.normals(N * M)), w = f32([M, K], rng.normals(M * K));
  const dw0 = rng.normals(M * K);
  eachIsa((isa) => {
    const want = f32([M, K], dw0), got = f32([M, K], dw0);
    refGrad.matmulInto(want, dy, x, { transA: true, accumulate: true });
    nativeGrad.matmulInto(got, dy, x, { transA: true, accumulate: true });
    assertClose(got.data, want.data, 0, MATMUL_ATOL, `dW ${isa}`);
    const dxWant = f32([N, K], new Float32Array(N * K)), dxGot = f32([N, K], new Float32Array(N * K));
    refGrad.matmulInto(dxWant, dy, w);
    nativeGrad.matmulInto(dxGot, dy, w);
    assertClose(dxGot.data, dxWant.data, 0, MATMUL_ATOL, `dx ${isa}`);
  });
});

// Column sums in double, one rounding: equal to the float64 reference rounded to f32.
test('sumRowsInto: native equals reference (small, and big enough to thread)', () => {
  const rng = new Rng(21);
  for (const [M, N] of [[13, 67], [700, 67]] as const) {
    const x = f32([M, N], rng.normals(M * N)), d0 = rng.normals(N);
    const want = f32([N], d0);
    refGrad.sumRowsInto(want, x, true);
    eachIsa((isa) => {
      const got = f32([N], d0);
      nativeGrad.sumRowsInto(got, x, true);
      assert.deepEqual(got.data, want.data, `${isa} ${M}x${N}`);
      nativeGrad.sumRowsInto(got, x, false);
      const plain = f32([N], d0);
      refGrad.sumRowsInto(plain, x, false);
      assert.deepEqual(got.data, plain.data, `${isa} ${M}x${N} overwrite`);
    });
  }
});

test('embeddingBackward: exact (the same f32 additions in row order), repeated ids', () => {
  const rng = new Rng(22);
  const V = 1001, C = 67, N = 600;
  const ids = Tensor.from([N], 'i32', Int32Array.from({ length: N }, (_, i) => (i % 3 === 0 ? 5 : rng.int(V))));
  const dOut = f32([N, C], rng.normals(N * C)), t0 = rng.normals(V * C);
  const want = f32([V, C], t0);
  refGrad.embeddingBackward(ids, dOut, want);
  eachIsa((isa) => {
    const got = f32([V, C], t0);
    nativeGrad.embeddingBackward(ids, dOut, got);
    assert.deepEqual(got.data, want.data, isa);
  });
});

// f32 row sums (dx) and f32 products summed in double (dw, over N rows) vs float64.
const RMSNORM_BWD_RTOL = 1e-5, RMSNORM_BWD_ATOL = 2e-6;
test('rmsnormBackward: dx and dw match reference (C=67, and 9x4099)', () => {
  const rng = new Rng(23);
  for (const [N, C] of [[5, 67], [9, 4099]] as const) {
    const x = f32([N, C], rng.normals(N * C, 3)), w = f32([C], rng.normals(C)), dy = f32([N, C], rng.normals(N * C));
    const dw0 = rng.normals(C);
    const dwWant = f32([C], dw0);
    const dxWant = refGrad.rmsnormBackward(x, w, 1e-5, dy, dwWant);
    eachIsa((isa) => {
      const dw = f32([C], dw0);
      assertClose(nativeGrad.rmsnormBackward(x, w, 1e-5, dy, dw).data, dxWant.data, RMSNORM_BWD_RTOL, RMSNORM_BWD_ATOL, `dx ${isa} ${N}x${C}`);
      assertClose(dw.data, dwWant.data, RMSNORM_BWD_RTOL, RMSNORM_BWD_ATOL, `dw ${isa} ${N}x${C}`);
      assertClose(nativeGrad.rmsnormBackward(x, w, 1e-5, dy, undefined).data, dxWant.data, RMSNORM_BWD_RTOL, RMSNORM_BWD_ATOL, `dx without dw ${isa}`);
    });
  }
});

// The residual stream's gradient takes dx in place (`into`): the same bits as dx added
// to it afterwards (one f32 add per element), on every ISA, and the reference agrees.
test('rmsnormBackward into: dx added to a gradient in place, as a separate add would', () => {
  const rng = new Rng(26);
  for (const [N, C] of [[5, 67], [9, 4099]] as const) {
    const x = f32([N, C], rng.normals(N * C, 3)), w = f32([C], rng.normals(C)), dy = f32([N, C], rng.normals(N * C));
    const prior = rng.normals(N * C);
    eachIsa((isa) => {
      const dx = nativeGrad.rmsnormBackward(x, w, 1e-5, dy, undefined).data;
      const into = f32([N, C], prior);
      const got = nativeGrad.rmsnormBackward(x, w, 1e-5, dy, undefined, into);
      assert.equal(got, into, `${isa}: returns the tensor it added into`);
      assert.deepEqual(got.data, prior.map((p, i) => p + (dx[i] ?? NaN)), `${isa} ${N}x${C}`);
    });
    const refInto = f32([N, C], prior);
    const want = refGrad.rmsnormBackward(x, w, 1e-5, dy, undefined).data;
    refGrad.rmsnormBackward(x, w, 1e-5, dy, undefined, refInto);
    assertClose(refInto.data, prior.map((p, i) => p + (want[i] ?? NaN)), RMSNORM_BWD_RTOL, RMSNORM_BWD_ATOL, `reference ${N}x${C}`);
  }
  assert.throws(() => nativeGrad.rmsnormBackward(f32([2, 3], new Float32Array(6)), f32([3], new Float32Array(3)), 1e-5, f32([2, 3], new Float32Array(6)), undefined, f32([5], new Float32Array(5))), /dx \[5\] to add into must hold x's 6 values/);
});

// cos/sin rounded to f32 and f32 products vs float64 on N(0,1) inputs (as forward rope).
const ROPE_BWD_ATOL = 2e-6;
test('ropeBackward: native matches reference (D=12, D=10)', () => {
  const rng = new Rng(24);
  for (const [B, T, H, D] of [[2, 13, 6, 12], [1, 3, 4, 10]] as const) {
    const dy = f32([B, T, H, D], rng.normals(B * T * H * D));
    const positions = Int32Array.from({ length: T }, () => rng.int(4096));
    const invFreq = Float32Array.from({ length: D / 2 }, (_, j) => 1 / 10000 ** ((2 * j) / D));
    const want = refGrad.ropeBackward(dy, positions, invFreq).data;
    eachIsa((isa) => assertClose(nativeGrad.ropeBackward(dy, positions, invFreq).data, want, 0, ROPE_BWD_ATOL, `${isa} D=${D}`));
  }
});

// The native backend keeps the last cos/sin table it built and reuses it for the same
// positions and frequencies: a step rotates q and k of every layer, both ways, with one.
// Each call below changes one input (a position, a frequency, the direction, the length)
// and must match the reference built from scratch; then the first inputs come back.
test('rope and ropeBackward: the cached table follows its inputs', () => {
  const rng = new Rng(25);
  const [B, H, D] = [2, 3, 12];
  const freqs = Float32Array.from({ length: D / 2 }, (_, j) => 1 / 10000 ** ((2 * j) / D));
  const positions = Int32Array.from({ length: 9 }, () => rng.int(4096));
  const moved = positions.slice();
  moved[8] = (moved[8]! + 1) % 4096;
  const nudged = freqs.slice();
  nudged[5] = Math.fround(nudged[5]! * 1.5);
  const calls: [Int32Array, Float32Array, boolean][] = [
    [positions, freqs, false], [positions, freqs, true], [moved, freqs, false], [moved, nudged, true],
    [positions.subarray(0, 8), freqs, false], [positions, freqs, true], [positions, freqs, false],
  ];
  eachIsa((isa) => {
    for (const [i, [pos, inv, backward]] of calls.entries()) {
      const x = f32([B, pos.length, H, D], rng.normals(B * pos.length * H * D));
      const got = backward ? nativeGrad.ropeBackward(x, pos, inv) : nativeNn.rope(x, pos, inv);
      const want = backward ? refGrad.ropeBackward(x, pos, inv) : refNn.rope(x, pos, inv);
      assertClose(got.data, want.data, 0, ROPE_BWD_ATOL, `${isa} call ${i}`);
    }
  });
});

// f32 dots over D, sums over <= 18 keys and (for dk, dv) over the H/Hkv * T query rows
// that see a key, vs float64 on N(0,1) inputs.
const ATTENTION_BWD_ATOL = 2e-5;
test('attentionBackward: dq, dk, dv match reference (GQA H=6 Hkv=2 D=10, MHA D=12, T=1 and 13, S=T+5 < Smax)', () => {
  const rng = new Rng(25);
  for (const { B, H, Hkv, D } of [{ B: 2, H: 6, Hkv: 2, D: 10 }, { B: 2, H: 4, Hkv: 4, D: 12 }]) {
    for (const T of [1, 13]) {
      const S = T + 5, Smax = S + 3;
      const q = f32([B, T, H, D], rng.normals(B * T * H * D)), dy = f32([B, T, H, D], rng.normals(B * T * H * D));
      const k = f32([B, Smax, Hkv, D], rng.normals(B * Smax * Hkv * D)), v = f32([B, Smax, Hkv, D], rng.normals(B * Smax * Hkv * D));
      const scale = 1 / Math.sqrt(D);
      const want = refGrad.attentionBackward(q, k, v, S, scale, dy);
      eachIsa((isa) => {
        const got = nativeGrad.attentionBackward(q, k, v, S, scale, dy);
        for (const name of ['dq', 'dk', 'dv'] as const) {
          assert.deepEqual(got[name].shape, want[name].shape);
          assertClose(got[name].data, want[name].data, 0, ATTENTION_BWD_ATOL, `${name} ${isa} H=${H} Hkv=${Hkv} D=${D} T=${T}`);
        }
      });
    }
  }
});

// sigmoid through a 2-ulp polynomial exp and an f32 divide, then 3-4 f32 products.
const SILU_BWD_RTOL = 4e-6, SILU_BWD_ATOL = 1e-7;
test('siluMulBackward: native matches reference (odd length, and threaded)', () => {
  const rng = new Rng(26);
  for (const n of [335, 40_009]) {
    const g = f32([n], rng.normals(n, 4)), u = f32([n], rng.normals(n)), dy = f32([n], rng.normals(n));
    const want = refGrad.siluMulBackward(g, u, dy);
    eachIsa((isa) => {
      const got = nativeGrad.siluMulBackward(g, u, dy);
      assertClose(got.dGate.data, want.dGate.data, SILU_BWD_RTOL, SILU_BWD_ATOL, `dGate ${isa} n=${n}`);
      assertClose(got.dUp.data, want.dUp.data, SILU_BWD_RTOL, SILU_BWD_ATOL, `dUp ${isa} n=${n}`);
    });
  }
});

// Losses: f32 max and exps summed in double (~1e-6 relative per exp, 2-ulp SIMD exp);
// gradients: p * gradScale with p's relative error ~1e-6, so an absolute bound on p <= 1.
const CE_LOSS_ATOL = 2e-5, CE_GRAD_RTOL = 4e-6, CE_GRAD_ATOL = 1e-9;
test('crossEntropyInPlace: losses and gradients match reference (V=1001 with an ignored row; V=32003)', () => {
  const rng = new Rng(27);
  for (const [N, V] of [[7, 1001], [2, 32_003]] as const) {
    const logits = rng.normals(N * V, 3);
    const labels = Int32Array.from({ length: N }, (_, i) => (i === 1 ? -100 : i === 2 ? V - 1 : rng.int(V)));
    const want = f32([N, V], logits);
    const wantLoss = refGrad.crossEntropyInPlace(want, labels, 1 / 6);
    eachIsa((isa) => {
      const got = f32([N, V], logits);
      const loss = nativeGrad.crossEntropyInPlace(got, labels, 1 / 6);
      assertClose(loss, wantLoss, 0, CE_LOSS_ATOL, `loss ${isa} V=${V}`);
      assert.equal(loss[1], 0);
      assertClose(got.data, want.data, CE_GRAD_RTOL, CE_GRAD_ATOL, `grad ${isa} V=${V}`);
    });
  }
});

test('crossEntropyInPlace: predicted ids are each row\'s argmax before the overwrite (ties, NaN, ignored rows)', () => {
  const rng = new Rng(31);
  const V = 37; // not a multiple of 8 or 16: the last lanes are partial
  const rows = Array.from({ length: 10 }, () => Array.from(rng.normals(V, 2)));
  rows[0]![36] = 9; // the maximum in the partial tail
  rows[1]![3] = 9; rows[1]![20] = 9; // a tie: the first wins
  rows[2]![30] = NaN; rows[2]![5] = 9; // a NaN after the maximum wins
  rows[3]!.fill(-Infinity);
  rows[6]!.fill(0); rows[6]![2] = -0; // +0 and -0 compare equal: index 0
  rows[7]![35] = 9; rows[7]![20] = 9; rows[7]![17] = 9; // a tie across 16-value blocks and lanes
  rows[8]![2] = NaN; rows[8]![10] = 9; // a NaN before the maximum
  rows[9]![33] = 9; rows[9]![1] = 9; // a tie in the same lane of two blocks
  const logits = rows.flat();
  const labels = Int32Array.from([0, 3, 5, 0, -100, 1, 2, 4, 6, 8]);
  const want = refNn.argmax(f32([10, V], logits));
  assert.deepEqual(Array.from(want), [36, 3, 30, 0, want[4], want[5], 0, 17, 2, 1]);
  for (const [name, ops] of [['ref', refGrad], ['native', nativeGrad]] as const) {
    eachIsa((isa) => {
      const predicted = new Int32Array(10).fill(-1);
      const withIds = f32([10, V], logits), without = f32([10, V], logits);
      const loss = ops.crossEntropyInPlace(withIds, labels, 1, predicted);
      assert.deepEqual(predicted, want, `${name} ${isa}`);
      // Asking for the ids changes neither the loss nor the gradient, bit for bit.
      assert.deepEqual(loss, ops.crossEntropyInPlace(without, labels, 1), `${name} ${isa} loss`);
      assert.deepEqual(withIds.data, without.data, `${name} ${isa} gradient`);
    });
  }
  assert.throws(() => nativeGrad.crossEntropyInPlace(f32([10, V], logits), labels, 1, new Int32Array(9)), ShapeError);
});

test('dropout: the native mask equals the reference mask exactly, values within one f32 rounding', () => {
  const rng = new Rng(28);
  const n = 40_009;
  const x = f32([n], Float32Array.from(rng.normals(n), (v) => (v === 0 ? 1 : v)));
  for (const [p, seed] of [[0.1, 7], [0.5, 2 ** 40 + 3]] as const) {
    const want = refGrad.dropout(x, p, seed).data;
    eachIsa((isa) => {
      const got = nativeGrad.dropout(x, p, seed).data;
      for (let i = 0; i < n; i++) {
        assert.equal(got[i] === 0, want[i] === 0, `${isa} p=${p} mask at ${i}`);
        // x * f32(1/(1-p)) vs x / (1-p) rounded once: within 2 ulp.
        assert.ok(Math.abs((got[i] ?? 0) - (want[i] ?? 0)) <= 2.4e-7 * Math.abs(want[i] ?? 0), `${isa} value at ${i}`);
      }
    });
  }
});

// Two f32 roundings (s*b, then +) vs one rounding of the exact float64 result.
const AXPY_RTOL = 2.4e-7, AXPY_ATOL = 1e-30;
test('addScaled, addScaledInPlace, scaleInPlace: native matches reference (odd length, threaded)', () => {
  const rng = new Rng(29);
  for (const n of [67, 40_009]) {
    const a = f32([n], rng.normals(n)), b = f32([n], rng.normals(n));
    const s = -0.37;
    const want = refGrad.addScaled(a, b, s).data;
    eachIsa((isa) => {
      const got = nativeGrad.addScaled(a, b, s).data;
      const sum = want.map((w, i) => Math.abs(a.data[i] ?? 0) + Math.abs(s * (b.data[i] ?? 0)) + Math.abs(w));
      for (let i = 0; i < n; i++) assert.ok(Math.abs((got[i] ?? 0) - (want[i] ?? 0)) <= AXPY_RTOL * (sum[i] ?? 0) + AXPY_ATOL, `addScaled ${isa} at ${i}`);
      const dst = copy(a);
      nativeGrad.addScaledInPlace(dst, b, s);
      assert.deepEqual(dst.data, got, `addScaledInPlace ${isa}`);
      const sc = copy(a), scWant = copy(a);
      nativeGrad.scaleInPlace(sc, 0.3);
      refGrad.scaleInPlace(scWant, 0.3);
      assertClose(sc.data, scWant.data, AXPY_RTOL, 0, `scaleInPlace ${isa}`);
    });
  }
});

// AdamW in f32 (torch's rounding) vs the same formula in float64: each step rounds
// param * (1 - lr wd) and the update once more, so up to ~4 ulp of |param| after 3 steps.
const ADAMW_RTOL = 4.8e-7, ADAMW_ATOL = 1e-9;
test('adamw: native matches the float64 reference over 3 steps', () => {
  const rng = new Rng(30);
  const n = 40_009;
  const p0 = rng.normals(n), grads = [rng.normals(n), rng.normals(n), rng.normals(n)];
  const h = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, gradScale: 0.5 };
  const run = (ops: typeof refGrad): Float32Array => {
    const p = f32([n], p0), m = f32([n], new Float32Array(n)), v = f32([n], new Float32Array(n));
    grads.forEach((g, i) => ops.adamw(p, f32([n], g), m, v, { ...h, step: i + 1 }));
    return Float32Array.from(p.data);
  };
  const want = run(refGrad);
  eachIsa((isa) => assertClose(run(nativeGrad), want, ADAMW_RTOL, ADAMW_ATOL, `adamw ${isa}`));
});

test('sumSquares: equals the float64 sum within 1e-12 relative (every ISA)', () => {
  const rng = new Rng(31);
  for (const n of [1, 67, 1_000_003]) {
    const x = f32([n], rng.normals(n, 3));
    const want = refGrad.sumSquares(x);
    eachIsa((isa) => {
      const got = nativeGrad.sumSquares(x);
      assert.ok(Math.abs(got - want) <= 1e-12 * want, `${isa} n=${n}: ${got} vs ${want}`);
    });
  }
});

test('lowRankInto: h and y bit-identical to the separate ops (f32, bf16 autocast, bf16 B or base), with and without a base weight, every ISA and the reference', () => {
  const rng = new Rng(33);
  // M = 1 and 3 decode (the small-M path; with the base and M N K >= 2^17 the rank-R term
  // is added by the base product's row groups: [1, 768, 16, 768], [3, 512, 5, 300] with
  // row groups of 4 and 16 and a partial last one), 70 trains (the blocked one, x [W; A]^T shared,
  // columns split between threads); M = 150 splits rows: one K slice, two (K = 1100), two
  // column blocks (N = 2700), R past one panel (40); then empty dims (K = 0: the base still
  // overwrites y; R = 0; M = 0)
  const cases = [[1, 768, 16, 768], [3, 512, 5, 300], [3, 40, 8, 50], [70, 96, 16, 130], [150, 96, 16, 130], [150, 1100, 8, 40],
    [150, 40, 16, 2700], [150, 64, 40, 70], [1, 0, 4, 5], [2, 8, 0, 5], [0, 8, 4, 5]] as const;
  for (const [M, K, R, N] of cases) {
    for (const [bf16, bDtype] of [[false, 'f32'], [true, 'f32'], [false, 'bf16']] as const) {
      for (const base of [undefined, 'f32', 'bf16'] as const) {
        const x = f32([M, K], rng.normals(M * K)), a = f32([R, K], rng.normals(R * K));
        const b32 = f32([N, R], rng.normals(N * R)), b = bDtype === 'bf16' ? refGemm.cast(b32, 'bf16') : b32;
        const w32 = f32([N, K], rng.normals(N * K)), w = base === 'bf16' ? refGemm.cast(w32, 'bf16') : base === 'f32' ? w32 : undefined;
        const y0 = rng.normals(M * N);
        // The float64 reference is slow at M = 150: those cases check the native call against
        // the native separate ops (the reference has the smaller ones).
        const backends = [['native', nativeGrad, nativeGemm], ['ref', refGrad, refGemm]] as const;
        for (const [name, ops, gemm] of M >= 150 ? backends.slice(0, 1) : backends) {
          eachIsa((isa) => {
            const what = `${name} ${isa} M=${M} K=${K} R=${R} N=${N} bf16=${bf16} B ${bDtype} base ${base ?? 'none'}`;
            const wantH = f32([M, R], new Float32Array(M * R)), wantY = f32([M, N], y0);
            const product = (c: Tensor<'f32'>, p: Tensor, q: Tensor, accumulate: boolean): void => {
              if (bf16 || q.dtype === 'bf16') gemm.matmulBf16Into(c, p, q, { transB: true, accumulate });
              else ops.matmulInto(c, p, q, { transB: true, accumulate });
            };
            if (w !== undefined) product(wantY, x, w, false);
            product(wantH, x, a, false);
            ops.scaleInPlace(wantH, 0.375);
            product(wantY, wantH, b, true);
            const h = f32([M, R], new Float32Array(M * R)), y = f32([M, N], y0);
            ops.lowRankInto(y, x, a, b, h, 0.375, bf16, w);
            assert.deepEqual(h.data, wantH.data, `${what}: h`);
            assert.deepEqual(y.data, wantY.data, `${what}: y`);
            // without h (the call's own scratch), and on one thread: the same y
            const y2 = f32([M, N], y0);
            ops.lowRankInto(y2, x, a, b, undefined, 0.375, bf16, w);
            assert.deepEqual(y2.data, wantY.data, `${what}: y, no h`);
            const y1 = f32([M, N], y0);
            withThreads(1, () => ops.lowRankInto(y1, x, a, b, undefined, 0.375, bf16, w));
            assert.deepEqual(y1.data, wantY.data, `${what}: y, one thread`);
          });
        }
      }
    }
  }
  const z = (r: number, c: number): Tensor<'f32'> => f32([r, c], new Float32Array(r * c));
  assert.throws(() => nativeGrad.lowRankInto(z(2, 5), z(2, 4), z(3, 4), z(5, 3), z(2, 2), 1, false), ShapeError);
  assert.throws(() => nativeGrad.lowRankInto(z(2, 5), z(2, 4), z(3, 4), z(5, 3), z(2, 3), 1, false, z(5, 3)), ShapeError);
  assert.throws(() => nativeGrad.lowRankInto(z(2, 5), z(2, 4), z(3, 4), z(5, 2), undefined, 1, false), ShapeError);
  assert.throws(() => nativeGrad.lowRankInto(z(2, 4), z(2, 4), z(3, 4), z(5, 3), undefined, 1, false), ShapeError);
  assert.throws(() => nativeGrad.lowRankInto(z(2, 5), z(2, 4), z(3, 4), z(5, 3), undefined, Infinity, false), ShapeError);
});
