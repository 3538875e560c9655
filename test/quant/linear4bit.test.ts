// The fused 4-bit linear layer: native linear4bit / linear4bitBackwardInput (W decoded
// inside the GEMV path or the blocked driver's B packer) against dequantize-then-linear on
// the reference backend, every ISA, f32 and bf16 compute, odd sizes, blocks spanning rows,
// double quant and FP4; determinism across thread counts; size checks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor } from '../../src/tensor/tensor.js';
import { scope } from '../../src/tensor/scope.js';
import { refQuant } from '../../src/backend/ref/quant.js';
import { nativeQuant, weightArgs } from '../../src/backend/native/quant.js';
import { refGemm } from '../../src/backend/ref/gemm.js';
import { ShapeError } from '../../src/errors.js';
import { native } from '../../src/backend/native/addon.js';
import { eachIsa, withThreads } from '../helpers/isa.js';
import type { Quant4Weight, QuantType } from '../../src/quant/types.js';
import { Rng } from '../helpers/random.js';

/**
 * |native - ref| <= REL * sum_k |x_k W_jk| (+ |bias_j|). The reference sums the same
 * dequantized (and, for bf16, bf16-rounded) values in float64; the native f32 sums err by
 * ~sqrt(K) 2^-24 of that bound (K <= 1031: ~2e-6) and vdpbf16ps rounds once more per pair.
 */
const F32_REL = 1e-5;
const BF16_REL = 2e-5;

function assertClose(got: Float32Array, want: Float32Array, bound: Float32Array, rel: number, what: string): void {
  assert.equal(got.length, want.length, what);
  for (let i = 0; i < got.length; i++) {
    const g = got[i] ?? NaN, w = want[i] ?? NaN, tol = rel * (bound[i] ?? 0) + 1e-30;
    if (!(Math.abs(g - w) <= tol)) assert.fail(`${what}: element ${i} is ${g}, want ${w} (tolerance ${tol})`);
  }
}

const absT = (t: Tensor<'f32'>): Tensor<'f32'> => Tensor.from(t.shape, 'f32', t.data.map(Math.abs));

/** |W| as a 4-bit weight with the same codes' magnitudes: the bound uses the dense |W| instead. */
function denseAbs(q: Quant4Weight): Tensor<'f32'> {
  return absT(refQuant.dequantize4bit(q));
}

// (N, K, blocksize): K odd or not a multiple of the blocksize (blocks span rows, rows
// start mid-byte), K a multiple of 32 (the vector decode path), N past the GEMV row groups;
// rows of whole blocks (the GEMV's block-major tiles: [33, 256, 128], [13, 192, 64]) and
// rows of more blocks than those tiles take (257 > 256: the walk again).
const SHAPES: [number, number, number][] = [[37, 45, 32], [64, 96, 64], [130, 77, 32], [33, 256, 128], [5, 1031, 64], [13, 192, 64], [3, 8224, 32]];
const MS = [1, 3, 17, 130];

test('linear4bit and its input gradient match dequantize-then-linear on every ISA (f32 and bf16 compute)', () => {
  const rng = new Rng(31);
  let variant = 0;
  for (const [N, K, blocksize] of SHAPES) {
    // Rotate quant type and double quant over the shapes so each combination is covered.
    const quantType: QuantType = variant % 2 === 0 ? 'nf4' : 'fp4';
    const doubleQuant = variant % 3 !== 1;
    variant++;
    scope(() => {
      const w = Tensor.from([N, K], 'f32', rng.normals(N * K, 0.05));
      const q = refQuant.quantize4bit(w, { quantType, blocksize, doubleQuant });
      const wAbs = denseAbs(q), bias = Tensor.from([N], 'f32', rng.normals(N));
      for (const M of MS) {
        const x = Tensor.from([M, K], 'f32', rng.normals(M * K)), dy = Tensor.from([M, N], 'f32', rng.normals(M * N));
        for (const cd of ['f32', 'bf16'] as const) {
          const rel = cd === 'f32' ? F32_REL : BF16_REL;
          const b = M % 2 === 1 ? bias : undefined;
          const want = refQuant.linear4bit(x, q, b, cd), wantDx = refQuant.linear4bitBackwardInput(dy, q, cd);
          const bound = refGemm.linear(absT(x), wAbs, b === undefined ? undefined : absT(b));
          const boundDx = refGemm.matmul(absT(dy), wAbs);
          eachIsa((isa) => {
            const what = `${isa} ${cd} ${quantType} dq=${doubleQuant} M=${M} N=${N} K=${K} bs=${blocksize}`;
            const y = nativeQuant.linear4bit(x, q, b, cd);
            assert.deepEqual(y.shape, [M, N]);
            assertClose(y.data, want.data, bound.data, rel, `${what} forward`);
            const dx = nativeQuant.linear4bitBackwardInput(dy, q, cd);
            assert.deepEqual(dx.shape, [M, K]);
            assertClose(dx.data, wantDx.data, boundDx.data, rel, `${what} dX`);
          });
        }
      }
    });
  }
});

test('reference linear4bit is the reference linear on the dequantized matrix (bf16: W rounded to bf16)', () => {
  scope(() => {
    const rng = new Rng(32);
    const w = Tensor.from([9, 70], 'f32', rng.normals(630));
    const q = refQuant.quantize4bit(w, { quantType: 'nf4', blocksize: 64, doubleQuant: true });
    const x = Tensor.from([2, 3, 70], 'f32', rng.normals(420));
    const dense = refQuant.dequantize4bit(q);
    assert.deepEqual(refQuant.linear4bit(x, q, undefined, 'f32').data, refGemm.linear(x, dense).data);
    assert.deepEqual(refQuant.linear4bit(x, q, undefined, 'bf16').data, refGemm.linear(x, refGemm.cast(dense, 'bf16')).data);
    assert.deepEqual(nativeQuant.linear4bit(x, q, undefined, 'f32').shape, [2, 3, 9]);
  });
});

test('fused 4-bit products are deterministic: bit-identical on repeat and for 1 or 2 threads', () => {
  const rng = new Rng(33);
  scope(() => {
    const [N, K] = [301, 515];
    const q = nativeQuant.quantize4bit(Tensor.from([N, K], 'f32', rng.normals(N * K)), { quantType: 'nf4', blocksize: 64, doubleQuant: true });
    for (const M of [1, 5, 130]) {
      const x = Tensor.from([M, K], 'f32', rng.normals(M * K)), dy = Tensor.from([M, N], 'f32', rng.normals(M * N));
      for (const cd of ['f32', 'bf16'] as const) {
        eachIsa((isa) => {
          const run = (t: number): [Float32Array, Float32Array] =>
            withThreads(t, () => [nativeQuant.linear4bit(x, q, undefined, cd).data, nativeQuant.linear4bitBackwardInput(dy, q, cd).data]);
          const first = run(2);
          assert.deepEqual(run(2), first, `${isa} ${cd} M=${M} repeat`);
          assert.deepEqual(run(1), first, `${isa} ${cd} M=${M} 1 thread`);
        });
      }
    }
  });
});

test('4-bit kernels write their outputs whole: NaN-filled outputs give the same bits (the wrappers allocate them uninitialized)', () => {
  const rng = new Rng(35);
  scope(() => {
    for (const [N, K] of [[37, 45], [33, 256]] as const) {
      const q = nativeQuant.quantize4bit(Tensor.from([N, K], 'f32', rng.normals(N * K)), { quantType: 'nf4', blocksize: 32, doubleQuant: true });
      const args = weightArgs('test', q);
      for (const M of [1, 130]) {
        const x = new Float32Array(rng.normals(M * K)), dy = new Float32Array(rng.normals(M * N));
        const xb = Tensor.from([M, K], 'f32', x), dyb = Tensor.from([M, N], 'f32', dy);
        const [x16, dy16] = [refGemm.cast(xb, 'bf16').data, refGemm.cast(dyb, 'bf16').data];
        eachIsa((isa) => {
          const filled = (n: number, v: number): Float32Array => new Float32Array(n).fill(v);
          for (const [name, run] of [
            ['linear f32', (out: Float32Array) => native().q4Linear(args, x, null, out, M)],
            ['linear bf16', (out: Float32Array) => native().q4Linear(args, x16, null, out, M)],
            ['backward f32', (out: Float32Array) => native().q4LinearBackward(args, dy, out, M)],
            ['backward bf16', (out: Float32Array) => native().q4LinearBackward(args, dy16, out, M)],
            ['dequantize', (out: Float32Array) => native().q4Dequantize(args, out)],
          ] as const) {
            const n = name.startsWith('linear') ? M * N : name.startsWith('backward') ? M * K : N * K;
            const zero = filled(n, 0), nan = filled(n, NaN);
            assert.equal(run(zero), 0, `${isa} ${name}`);
            assert.equal(run(nan), 0, `${isa} ${name}`);
            assert.deepEqual(nan, zero, `${isa} ${name} N=${N} K=${K} M=${M}`);
          }
        });
      }
    }
  });
});

test('empty weights: N = 0 gives an empty output and K = 0 zeros, as the reference (an empty typed array is not an absent one)', () => {
  scope(() => {
    for (const [N, K] of [[0, 64], [3, 0]] as const) {
      for (const doubleQuant of [false, true]) {
        const w = Tensor.zeros([N, K], 'f32'), x = Tensor.from([2, K], 'f32', new Rng(36).normals(2 * K));
        const opts = { quantType: 'nf4' as const, blocksize: 64, doubleQuant };
        const want = refQuant.linear4bit(x, refQuant.quantize4bit(w, opts), undefined, 'f32');
        eachIsa((isa) => {
          const got = nativeQuant.linear4bit(x, nativeQuant.quantize4bit(w, opts), undefined, 'f32');
          assert.deepEqual(got.shape, want.shape, `${isa} N=${N} K=${K}`);
          assert.deepEqual(Array.from(got.data), Array.from(want.data), `${isa} N=${N} K=${K} double quant ${doubleQuant}`);
        });
      }
    }
  });
});

test('kernels check sizes before touching memory; wrappers raise ShapeError', () => {
  scope(() => {
    const q = nativeQuant.quantize4bit(Tensor.from([4, 64], 'f32', new Rng(34).normals(256)), { quantType: 'nf4', blocksize: 64, doubleQuant: false });
    const args = {
      codes: q.codes.data, map: q.quantMap, absmax: q.absmax?.data ?? null, nestedCodes: null, nestedAbsmax: null, nestedMap: null,
      offset: 0, N: 4, K: 64, blocksize: 64, nestedBlocksize: 0,
    };
    const n = native(), x = new Float32Array(2 * 64), y = new Float32Array(2 * 4);
    eachIsa((isa) => {
      assert.equal(n.q4Linear(args, x, null, y, 2), 0, isa);
      assert.equal(n.q4Linear({ ...args, codes: q.codes.data.subarray(1) }, x, null, y, 2), 1, `${isa} short codes`);
      assert.equal(n.q4Linear({ ...args, absmax: new Float32Array(3) }, x, null, y, 2), 1, `${isa} short absmax`);
      assert.equal(n.q4Linear({ ...args, absmax: null, nestedBlocksize: 256 }, x, null, y, 2), 1, `${isa} no absmax, no nested`);
      assert.equal(n.q4Linear(args, x.subarray(1), null, y, 2), 1, `${isa} short x`);
      assert.equal(n.q4Linear(args, x, new Float32Array(3), y, 2), 1, `${isa} short bias`);
      assert.equal(n.q4Linear({ ...args, blocksize: 48 }, x, null, y, 2), 2, `${isa} bad blocksize`);
      assert.equal(n.q4LinearBackward(args, new Float32Array(7), new Float32Array(128), 2), 1, `${isa} short dy`);
      assert.equal(n.q4Dequantize(args, new Float32Array(255)), 1, `${isa} short out`);
      assert.equal(n.q4QuantizeF32(new Float32Array(64), new Uint8Array(31), new Float32Array(1), 64, 64, 0), 1, `${isa} short codes out`);
      assert.equal(n.q4QuantizeF32(new Float32Array(64), new Uint8Array(32), new Float32Array(1), 64, 64, 2), 2, `${isa} bad type`);
    });
    assert.throws(() => nativeQuant.linear4bit(Tensor.zeros([2, 63], 'f32'), q, undefined, 'f32'), ShapeError);
    assert.throws(() => nativeQuant.linear4bit(Tensor.zeros([2, 64], 'f32'), q, Tensor.zeros([5], 'f32'), 'f32'), ShapeError);
    assert.throws(() => nativeQuant.linear4bitBackwardInput(Tensor.zeros([2, 5], 'f32'), q, 'f32'), ShapeError);
    assert.throws(() => refQuant.linear4bitBackwardInput(Tensor.zeros([2, 5], 'f32'), q, 'f32'), ShapeError);
  });
});
