// GEMM family: native kernels (every ISA this CPU runs) against the pure-TS reference for
// every orientation, accumulate and bias, odd sizes and sizes past the cache blocks; exact
// casts; size checks; determinism (repeat and thread count); the small-M (decode) path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '../../src/tensor/tensor.js';
import type { DType } from '../../src/tensor/dtype.js';
import { scope } from '../../src/tensor/scope.js';
import { NativeError, ShapeError } from '../../src/errors.js';
import { check, native, type Isa } from '../../src/backend/native/addon.js';
import { gemmInto, nativeGemm, type GemmSpec } from '../../src/backend/native/gemm.js';
import { f16ToF32Bits, f32ToBf16, refGemm, refGemmInto } from '../../src/backend/ref/gemm.js';
import { Rng } from '../helpers/random.js';
import { eachIsa, withThreads } from '../helpers/isa.js';

/**
 * f32 GEMM: |native - ref| <= F32_REL * (sum_k |a_ik b_kj| + |c_old| + |bias_j|). The ref
 * sums in float64; f32 accumulation errs by at most ~K * 2^-24 of that sum in the worst
 * case and by ~sqrt(K) * 2^-24 for these random inputs (K <= 1100: ~2e-6).
 */
const F32_REL = 1e-5;
/**
 * bf16 GEMM against a ref fed the same bf16 inputs: each product is exact in f32, so only
 * the f32 accumulation differs; vdpbf16ps rounds once more per k pair.
 */
const BF16_REL = 2e-5;

type Dtype = 'f32' | 'bf16';

function randomTensor(rng: Rng, shape: number[], dtype: Dtype): Tensor {
  const v = rng.normals(shape.reduce((p, d) => p * d, 1));
  return dtype === 'f32' ? Tensor.from(shape, 'f32', v) : Tensor.from(shape, 'bf16', Array.from(v, f32ToBf16));
}

/** |x| element-wise (same dtype; bf16 by clearing the sign bit). */
function abs<D extends DType>(x: Tensor<D>): Tensor<D> {
  const d: ArrayLike<number> = x.data;
  return Tensor.from(x.shape, x.dtype, Array.from(d, x.dtype === 'bf16' ? (h: number): number => h & 0x7fff : Math.abs));
}

/** Asserts |got - want| <= rel * bound element-wise, naming the first bad element. */
function assertClose(got: Float32Array, want: Float32Array, bound: Float32Array, rel: number, what: string): void {
  assert.equal(got.length, want.length);
  for (let i = 0; i < got.length; i++) {
    const g = got[i] ?? NaN, w = want[i] ?? NaN, tol = rel * (bound[i] ?? 0);
    if (!(Math.abs(g - w) <= tol)) assert.fail(`${what}: element ${i} is ${g}, want ${w} (tolerance ${tol})`);
  }
}

/** Operand shapes for M, N, K under the given orientation. */
function shapes(M: number, N: number, K: number, transA: boolean, transB: boolean): [number[], number[]] {
  return [transA ? [K, M] : [M, K], transB ? [N, K] : [K, N]];
}

// Every M in 1,3,17,65, N in 1,5,33,129, K in 1,7,31,130 appears; the last cases cross
// the KC (768 f32 / 1024 bf16), MC (336) and NC (2048) blocks so every driver loop runs more than once.
// N = 2100 and 4400 end in a remainder under a quarter NC block (it joins the last full
// block), N = 3100 in a longer one (a block of its own).
const CASES: [number, number, number][] = [
  [1, 1, 1], [3, 5, 7], [17, 33, 31], [65, 129, 130], [1, 129, 130], [65, 1, 7], [17, 5, 130], [3, 33, 1],
  [350, 40, 300], [20, 40, 1100], [3, 2100, 20], [3, 3100, 20], [3, 4400, 20], [0, 4, 3], [4, 3, 0],
];
const ORIENTATIONS: [boolean, boolean][] = [[false, false], [false, true], [true, false], [true, true]];

for (const dtype of ['f32', 'bf16'] as const) {
  test(`gemm ${dtype}: native matches ref for every orientation, accumulate, bias and ISA`, () => {
    const rng = new Rng(dtype === 'f32' ? 1 : 2);
    const rel = dtype === 'f32' ? F32_REL : BF16_REL;
    for (const [M, N, K] of CASES) {
      for (const [transA, transB] of ORIENTATIONS) {
        scope(() => {
          const [sa, sb] = shapes(M, N, K, transA, transB);
          const a = randomTensor(rng, sa, dtype), b = randomTensor(rng, sb, dtype);
          const c0 = Tensor.from([M, N], 'f32', rng.normals(M * N));
          const bias = Tensor.from([N], 'f32', rng.normals(N));
          for (const accumulate of [false, true]) {
            const spec: GemmSpec = { M, N, K, transA, transB, accumulate };
            if (accumulate) spec.bias = bias;
            const want = Tensor.from([M, N], 'f32', c0.data);
            refGemmInto(want, a, b, spec);
            const bound = Tensor.from([M, N], 'f32', c0.data.map(Math.abs));
            refGemmInto(bound, abs(a), abs(b), { ...spec, bias: accumulate ? abs(bias) : undefined });
            eachIsa((isa) => {
              const got = Tensor.from([M, N], 'f32', c0.data);
              gemmInto(got, a, b, spec);
              const what = `${isa} ${dtype} M=${M} N=${N} K=${K} transA=${transA} transB=${transB} accumulate+bias=${accumulate}`;
              assertClose(got.data, want.data, bound.data, rel, what);
            });
          }
        });
      }
    }
  });
}

// Small-M (decode) path: y (M,N) [+]= x (M,K) W(N,K)^T for M <= 32 runs unpacked GEMV tiles
// (4 rows of W, up to 4 rows of x, 16 or 32 lanes of K). M crosses the x-row blocks (4 on
// AVX-512, 2 on AVX2) and the cut-over (32); N leaves 1-3 rows in the last W group; K
// covers below one vector, the 8/16/32-lane tails and many steps.
const SMALL_M = [1, 2, 3, 5, 8, 9, 32, 33];
const SMALL_NK: [number, number][] = [[1, 1], [7, 3], [37, 45], [5, 33], [130, 17], [3, 1100]];

for (const dtype of ['f32', 'bf16'] as const) {
  test(`gemm ${dtype} small M (x W^T): native matches ref for every ISA, accumulate and bias`, () => {
    const rng = new Rng(dtype === 'f32' ? 6 : 7);
    const rel = dtype === 'f32' ? F32_REL : BF16_REL;
    for (const M of SMALL_M) {
      for (const [N, K] of SMALL_NK) {
        // transA with M = 1 has the same layout, so it takes the small-M path too.
        for (const transA of M === 1 ? [false, true] : [false]) {
          scope(() => {
            const [sa, sb] = shapes(M, N, K, transA, true);
            const a = randomTensor(rng, sa, dtype), b = randomTensor(rng, sb, dtype);
            const c0 = Tensor.from([M, N], 'f32', rng.normals(M * N));
            const bias = Tensor.from([N], 'f32', rng.normals(N));
            for (const [accumulate, withBias] of [[false, false], [false, true], [true, false], [true, true]] as const) {
              const spec: GemmSpec = { M, N, K, transA, transB: true, accumulate };
              if (withBias) spec.bias = bias;
              const want = Tensor.from([M, N], 'f32', c0.data);
              refGemmInto(want, a, b, spec);
              const bound = Tensor.from([M, N], 'f32', c0.data.map(Math.abs));
              refGemmInto(bound, abs(a), abs(b), { ...spec, bias: withBias ? abs(bias) : undefined });
              eachIsa((isa) => {
                const got = Tensor.from([M, N], 'f32', c0.data);
                gemmInto(got, a, b, spec);
                const what = `${isa} ${dtype} M=${M} N=${N} K=${K} transA=${transA} accumulate=${accumulate} bias=${withBias}`;
                assertClose(got.data, want.data, bound.data, rel, what);
              });
            }
          });
        }
      }
    }
  });
}

test('small-M path is deterministic: bit-identical on repeat and for 1 or 2 threads', () => {
  const rng = new Rng(8);
  // N * K * M well past the size where the row groups go parallel; N odd.
  for (const dtype of ['f32', 'bf16'] as const) {
    for (const M of [1, 5]) {
      scope(() => {
        const N = 301, K = 515;
        const x = randomTensor(rng, [M, K], dtype), w = randomTensor(rng, [N, K], dtype);
        const bias = Tensor.from([N], 'f32', rng.normals(N)), c0 = rng.normals(M * N);
        eachIsa((isa) => {
          const run = (t: number): Float32Array => withThreads(t, () => {
            const c = Tensor.from([M, N], 'f32', c0);
            gemmInto(c, x, w, { M, N, K, transB: true, accumulate: true, bias });
            return c.data;
          });
          const first = run(2);
          assert.deepEqual(run(2), first, `${isa} ${dtype} M=${M} repeat`);
          assert.deepEqual(run(1), first, `${isa} ${dtype} M=${M} 1 thread`);
        });
      });
    }
  }
});

test('small-M path: a decoded row (M = 1) equals the same row of a batch, bit for bit, every ISA and thread count', () => {
  // On AVX-512, M = 1 takes the 16-row tile (one transpose-reduction for 16 sums) and a
  // batch with rows past 1024 bytes the 4-row tile (a horizontal sum each): they must give
  // the same bits, or greedy decoding would depend on how many rows ran together. Short
  // rows take the 16-row tile either way. N crosses the 16-row groups with a ragged tail;
  // K crosses the SIMD width, so the masked tails run too.
  const rng = new Rng(9);
  for (const dtype of ['f32', 'bf16'] as const) {
    const long = dtype === 'f32' ? 300 : 600; // past 1024 bytes: the batch takes the 4-row tile
    for (const K of [1, 7, 16, 17, 33, 64, long, 2 * long + 5]) {
      for (const N of [1, 5, 16, 17, 40, 301]) {
        scope(() => {
          const M = 3;
          const x = randomTensor(rng, [M, K], dtype), w = randomTensor(rng, [N, K], dtype);
          const bias = Tensor.from([N], 'f32', rng.normals(N)), c0 = rng.normals(M * N);
          eachIsa((isa) => {
            for (const threads of [1, 2]) {
              withThreads(threads, () => {
                const batch = Tensor.from([M, N], 'f32', c0);
                gemmInto(batch, x, w, { M, N, K, transB: true, accumulate: true, bias });
                for (let m = 0; m < M; m++) {
                  const row = Tensor.from([1, N], 'f32', c0.subarray(m * N, (m + 1) * N));
                  const xm = Tensor.from([1, K], dtype, x.data.subarray(m * K, (m + 1) * K));
                  gemmInto(row, xm, w, { M: 1, N, K, transB: true, accumulate: true, bias });
                  assert.deepEqual(row.data, batch.data.subarray(m * N, (m + 1) * N), `${isa} ${dtype} K=${K} N=${N} row ${m} ${threads} threads`);
                }
              });
            }
          });
        });
      }
    }
  }
});

test('matmul and linear: native matches ref, f32 and bf16 weights, with and without bias', () => {
  const rng = new Rng(3);
  scope(() => {
    const x = Tensor.from([2, 3, 37], 'f32', rng.normals(2 * 3 * 37));
    const bias = Tensor.from([19], 'f32', rng.normals(19));
    for (const wd of ['f32', 'bf16'] as const) {
      const w = randomTensor(rng, [19, 37], wd);
      for (const b of [undefined, bias]) {
        const want = refGemm.linear(x, w, b);
        const bound = refGemm.linear(abs(x), abs(w), b === undefined ? undefined : abs(b));
        eachIsa((isa) => {
          const got = nativeGemm.linear(x, w, b);
          assert.deepEqual(got.shape, [2, 3, 19]);
          assertClose(got.data, want.data, bound.data, wd === 'f32' ? F32_REL : BF16_REL, `${isa} linear w ${wd} bias=${b !== undefined}`);
        });
      }
      const a = randomTensor(rng, [37, 5], wd);
      const want = refGemm.matmul(a, w, { transA: true, transB: true });
      const bound = refGemm.matmul(abs(a), abs(w), { transA: true, transB: true });
      eachIsa((isa) => {
        const got = nativeGemm.matmul(a, w, { transA: true, transB: true });
        assert.deepEqual(got.shape, [5, 19]);
        assertClose(got.data, want.data, bound.data, wd === 'f32' ? F32_REL : BF16_REL, `${isa} matmul TT ${wd}`);
      });
    }
  });
});

test('shape and dtype errors name the shapes', () => {
  scope(() => {
    const a = Tensor.zeros([2, 3], 'f32'), b = Tensor.zeros([4, 5], 'f32');
    assert.throws(() => nativeGemm.matmul(a, b), (e: unknown) => e instanceof ShapeError && /\[2, 3\]/.test(e.message) && /\[4, 5\]/.test(e.message));
    assert.throws(() => refGemm.matmul(a, b), ShapeError);
    assert.throws(() => nativeGemm.matmul(a, Tensor.zeros([3, 2], 'i32')), /must be f32 or bf16/);
    assert.throws(() => nativeGemm.linear(a, Tensor.zeros([4, 2], 'f32')), /linear: x f32 \[2, 3\]/);
    assert.throws(() => nativeGemm.linear(a, Tensor.zeros([4, 3], 'f32'), Tensor.zeros([5], 'f32')), /bias f32 \[5\]/);
    assert.throws(() => nativeGemm.cast(Tensor.zeros([2], 'i32'), 'f32'), ShapeError);
  });
});

test('kernels return status 1 for too-small buffers and 2 for bad dims, never crash', () => {
  const n = native();
  const f = (k: number): Float32Array => new Float32Array(k), h = (k: number): Uint16Array => new Uint16Array(k);
  eachIsa(() => {
    assert.equal(n.gemmF32(f(5), f(12), f(8), 2, 4, 3, false, false, false), 1);  // a needs 6
    assert.equal(n.gemmF32(f(6), f(11), f(8), 2, 4, 3, false, true, false), 1);  // b needs 12
    assert.equal(n.gemmF32(f(6), f(12), f(7), 2, 4, 3, true, false, true), 1);  // c needs 8
    assert.equal(n.gemmF32(f(6), f(12), f(8), 2, 4, 3, false, false, false, f(3)), 1);  // bias needs 4
    assert.equal(n.gemmBf16(h(6), h(11), f(8), 2, 4, 3, false, false, false), 1);
    assert.equal(n.gemmF32(f(6), f(12), f(8), -2, 4, 3, false, false, false), 2);
    assert.equal(n.castF32ToBf16(f(9), h(8), 9), 1);
    assert.equal(n.castBf16ToF32(h(8), f(9), 9), 1);
    assert.equal(n.castF16ToF32(h(9), f(9), -1), 2);
    assert.equal(n.gemmF32(f(6), f(12), f(8), 2, 4, 3, false, false, false), 0);
  });
  assert.throws(() => check(n.gemmF32(f(5), f(12), f(8), 2, 4, 3, false, false, false), 'gemm_f32'),
    (e: unknown) => e instanceof NativeError && e.status === 1 && /gemm_f32/.test(e.message));
});

test('gemm is deterministic: bit-identical on repeat and for 1 or 2 threads', () => {
  const rng = new Rng(4);
  scope(() => {
    // 'mixed': f32 a rounded to bf16 inside the product (gemm-mixed.test.ts).
    for (const dtype of ['f32', 'bf16', 'mixed'] as const) {
      const a = randomTensor(rng, [300, 270], dtype === 'mixed' ? 'f32' : dtype), b = randomTensor(rng, [90, 270], dtype === 'mixed' ? 'bf16' : dtype);
      eachIsa((isa) => {
        const run = (t: number): Float32Array => withThreads(t, () => {
          const c = Tensor.zeros([300, 90], 'f32');
          gemmInto(c, a, b, { M: 300, N: 90, K: 270, transB: true });
          return c.data;
        });
        const first = run(2);
        assert.deepEqual(run(2), first, `${isa} ${dtype} repeat`);
        assert.deepEqual(run(1), first, `${isa} ${dtype} 1 thread`);
      });
    }
  });
});

// A column's sum must not depend on how its 32-column panel is filled: whole, half (16
// columns: the half-width micro-kernel, a rank-16 LoRA factor's case) or an edge (8).
test('gemm: a column gets the same bits from a full, half or edge panel, every ISA', () => {
  const rng = new Rng(5);
  scope(() => {
    for (const dtype of ['f32', 'bf16', 'mixed'] as const) {
      const M = 45, K = 1100;  // an edge row tile; K past one KC slice
      const a = randomTensor(rng, [M, K], dtype === 'mixed' ? 'f32' : dtype);
      const b = randomTensor(rng, [64, K], dtype === 'mixed' ? 'bf16' : dtype);
      eachIsa((isa) => {
        const product = (n: number): Float32Array => {
          const c = Tensor.zeros([M, n], 'f32');
          gemmInto(c, a, Tensor.view(b, 0, [n, K]), { M, N: n, K, transB: true }, dtype === 'mixed');
          return c.data;
        };
        const full = product(64);
        for (const n of [48, 40, 16]) {
          const part = product(n);
          for (let i = 0; i < M; i++) {
            assert.deepEqual(part.subarray(i * n, (i + 1) * n), full.subarray(i * 64, i * 64 + n), `${isa} ${dtype} N=${n} row ${i}`);
          }
        }
      });
    }
  });
});

test('gemm f32 A^T B: A read in place (column blocks up to 1024) gives the packed product\'s bits, every ISA', () => {
  const rng = new Rng(8);
  scope(() => {
    const M = 45, K = 1100, wide = 1100;  // an edge row tile; K past one KC slice; wide packs A
    const a = randomTensor(rng, [K, M], 'f32'), b = randomTensor(rng, [K, wide], 'f32') as Tensor<'f32'>;
    const c0 = rng.normals(M * wide);
    eachIsa((isa) => {
      for (const accumulate of [false, true]) {
        const product = (n: number): Float32Array => {
          const bn = Tensor.from([K, n], 'f32', Array.from({ length: K * n }, (_, i) => b.data[Math.floor(i / n) * wide + (i % n)] ?? NaN));
          const c = Tensor.from([M, n], 'f32', Array.from({ length: M * n }, (_, i) => c0[Math.floor(i / n) * wide + (i % n)] ?? NaN));
          gemmInto(c, a, bn, { M, N: n, K, transA: true, accumulate });
          return c.data;
        };
        const full = product(wide);
        for (const n of [1024, 288, 40]) {
          const part = product(n);
          for (let i = 0; i < M; i++) {
            assert.deepEqual(part.subarray(i * n, (i + 1) * n), full.subarray(i * wide, i * wide + n), `${isa} N=${n} accumulate=${accumulate} row ${i}`);
          }
        }
      }
    });
  });
});

// Skinny path (AVX-512): A^T B with M or N <= 16 summed over a long K, the LoRA gradients
// dB = dY^T h and dA = u^T x. R = 16 is the unrolled case; W = 40 leaves a partial lane
// block; K = 2048 is a sequence of tokens.
test('gemm A^T B with a side <= 16: native matches ref, mixed equals cast-then-gemm, any thread count', () => {
  const rng = new Rng(12);
  for (const [M, N, K] of [[40, 16, 2048], [16, 40, 300], [37, 5, 100], [7, 64, 64], [16, 16, 70]] as const) {
    for (const dtype of ['f32', 'bf16', 'mixed'] as const) {
      scope(() => {
        const a = randomTensor(rng, [K, M], dtype === 'mixed' ? 'f32' : dtype), b = randomTensor(rng, [K, N], dtype === 'mixed' ? 'f32' : dtype);
        const ab = dtype === 'mixed' ? refGemm.cast(a, 'bf16') : a, bb = dtype === 'mixed' ? refGemm.cast(b, 'bf16') : b;
        const c0 = Tensor.from([M, N], 'f32', rng.normals(M * N));
        for (const accumulate of [false, true]) {
          const spec: GemmSpec = { M, N, K, transA: true, accumulate };
          const want = Tensor.from([M, N], 'f32', c0.data);
          refGemmInto(want, ab, bb, spec);
          const bound = Tensor.from([M, N], 'f32', c0.data.map(Math.abs));
          refGemmInto(bound, abs(ab), abs(bb), spec);
          eachIsa((isa) => {
            const run = (t: number, x: Tensor, y: Tensor): Float32Array => withThreads(t, () => {
              const got = Tensor.from([M, N], 'f32', c0.data);
              gemmInto(got, x, y, spec, dtype === 'mixed');
              return got.data;
            });
            const what = `${isa} ${dtype} M=${M} N=${N} K=${K} accumulate=${accumulate}`;
            const got = run(2, a, b);
            assertClose(got, want.data, bound.data, dtype === 'f32' ? F32_REL : BF16_REL, what);
            assert.deepEqual(run(1, a, b), got, `${what}: 1 thread`);
            if (dtype === 'mixed') assert.deepEqual(run(2, ab, bb), got, `${what}: cast first`);
          });
        }
      });
    }
  }
});

/** Runs a native cast kernel on raw bits under every ISA; returns the output bits per ISA. */
function castBits(kernel: 'castF32ToBf16' | 'castBf16ToF32' | 'castF16ToF32', input: Uint32Array | Uint16Array): Map<Isa, Uint32Array | Uint16Array> {
  const out = new Map<Isa, Uint32Array | Uint16Array>();
  eachIsa((isa) => {
    const n = native(), len = input.length;
    if (kernel === 'castF32ToBf16') {
      const y = new Uint16Array(len);
      check(n.castF32ToBf16(new Float32Array(input.buffer, input.byteOffset, len), y, len), kernel);
      out.set(isa, y);
    } else {
      const y = new Float32Array(len);
      check(n[kernel](new Uint16Array(input.buffer, input.byteOffset, len), y, len), kernel);
      out.set(isa, new Uint32Array(y.buffer));
    }
  });
  return out;
}

test('f32 -> bf16 rounds to nearest even on hand-picked bit patterns', () => {
  // [f32 bits, bf16 bits]
  const cases: [number, number][] = [
    [0x3f800000, 0x3f80], // 1.0
    [0x3f808000, 0x3f80], // tie, even stays
    [0x3f818000, 0x3f82], // tie, odd rounds up
    [0x3f808001, 0x3f81], // just above the tie
    [0x3f807fff, 0x3f80], // just below the tie
    [0xbf818000, 0xbf82], // negative tie, odd
    [0x7f7fffff, 0x7f80], // largest finite rounds to inf
    [0x7f800000, 0x7f80], [0xff800000, 0xff80], // inf
    [0x7fc00000, 0x7fc0], [0x7f800001, 0x7fc0], [0xffa00000, 0xffe0], [0x7f810000, 0x7fc1], // NaN stays NaN, quiet
    [0x00000001, 0x0000], [0x00008000, 0x0000], [0x00018000, 0x0002], [0x00008001, 0x0001], // subnormals
    [0x807fffff, 0x8080], // largest negative subnormal rounds to the smallest normal
    [0x80000000, 0x8000], [0x00000000, 0x0000], // signed zeros
  ];
  // 3 copies so the SIMD bodies (8/16 lanes) and the scalar tails all see every pattern.
  const input = Uint32Array.from([...cases, ...cases, ...cases].map(([x]) => x));
  const want = Uint16Array.from([...cases, ...cases, ...cases].map(([, y]) => y));
  for (const [isa, got] of castBits('castF32ToBf16', input)) assert.deepEqual(got, want, isa);
  const tsGot = Uint16Array.from(new Float32Array(input.buffer).filter((v) => !Number.isNaN(v)), f32ToBf16);
  const tsWant = want.filter((_, i) => !Number.isNaN(new Float32Array(input.buffer)[i]));
  assert.deepEqual(tsGot, tsWant, 'TS reference f32ToBf16');
});

test('bf16 -> f32 is exact for all 65536 patterns', () => {
  const input = Uint16Array.from({ length: 65536 }, (_, i) => i);
  const want = Uint32Array.from(input, (h) => (h << 16) >>> 0);
  for (const [isa, got] of castBits('castBf16ToF32', input)) assert.deepEqual(got, want, isa);
});

test('f16 -> f32 matches the TS reference for all 65536 patterns', () => {
  // Hand-checked anchors for the TS reference itself: 1, 2^-24, largest subnormal, inf, NaNs.
  const anchors: [number, number][] = [
    [0x3c00, 0x3f800000], [0x0001, 0x33800000], [0x03ff, 0x387fc000], [0x7bff, 0x477fe000],
    [0x7c00, 0x7f800000], [0xfc00, 0xff800000], [0x7e00, 0x7fc00000], [0x7c01, 0x7fc02000], [0x8000, 0x80000000],
  ];
  for (const [h, u] of anchors) assert.equal(f16ToF32Bits(h), u, `f16 0x${h.toString(16)}`);
  const input = Uint16Array.from({ length: 65536 }, (_, i) => i);
  const want = Uint32Array.from(input, f16ToF32Bits);
  for (const [isa, got] of castBits('castF16ToF32', input)) assert.deepEqual(got, want, isa);
});

test('cast op: native matches ref for f32/bf16/f16 -> f32/bf16', () => {
  const rng = new Rng(5);
  scope(() => {
    const f = Tensor.from([7, 9], 'f32', rng.normals(63, 1e3));
    const h = Tensor.from([7, 9], 'f16', Array.from({ length: 63 }, () => rng.int(65536)));
    const bf = refGemm.cast(f, 'bf16');
    for (const x of [f, h, bf]) {
      for (const to of ['f32', 'bf16'] as const) {
        const want = refGemm.cast(x, to);
        eachIsa((isa) => {
          const got = nativeGemm.cast(x, to);
          assert.deepEqual(got.shape, [7, 9]);
          assert.equal(got.dtype, to);
          const bits = (t: Tensor): Uint16Array | Uint32Array => (t.data instanceof Float32Array ? new Uint32Array(t.data.buffer, 0, t.size) : Uint16Array.from(t.data));
          assert.deepEqual(bits(got), bits(want), `${isa} ${x.dtype} -> ${to}`);
        });
      }
    }
  });
});
