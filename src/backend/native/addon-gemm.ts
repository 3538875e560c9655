// Native GEMM and dtype-conversion exports (native/src/gemm_bind.cc). Every function
// returns a status (0 ok, 1 a buffer too small, 2 a bad dimension, 4 out of memory); the
// wrapper passes it to check(). bf16 and f16 values travel as raw bit patterns.
//
// Layout: row-major with natural leading dims. a (M,K), or (K,M) when transA; b (K,N), or
// (N,K) when transB; c (M,N); bias (N) or null. accumulate: c += instead of c =.
import type { Q4WeightArgs } from './addon-quant.js';

export interface GemmAddon {
  /** c (M,N) [+]= op(a) op(b) [+ bias], f32. */
  gemmF32(a: Float32Array, b: Float32Array, c: Float32Array, M: number, N: number, K: number,
    transA: boolean, transB: boolean, accumulate: boolean, bias?: Float32Array | null): number;
  /** Same with bf16 a and b; products accumulate in f32. */
  gemmBf16(a: Uint16Array, b: Uint16Array, c: Float32Array, M: number, N: number, K: number,
    transA: boolean, transB: boolean, accumulate: boolean, bias?: Float32Array | null): number;
  /**
   * Same with a, b each f32 or bf16: every f32 operand is rounded to bf16 (as castF32ToBf16)
   * while it is packed, so the result equals casting it first and calling gemmBf16.
   */
  gemmBf16Mixed(a: Float32Array | Uint16Array, b: Float32Array | Uint16Array, c: Float32Array, M: number, N: number, K: number,
    transA: boolean, transB: boolean, accumulate: boolean, bias?: Float32Array | null): number;
  /**
   * Several products sharing a, gemmBf16Mixed each (gemmF32 with bf16 false: every operand
   * f32): outs are [b, c, N, transB, accumulate, backward], each c (M,N) [+]= op(a) op(b);
   * with bf16, b may be a 4-bit weight (c = a W^T, or a W with backward, as q4Linear /
   * q4LinearBackward with bf16 compute). a is packed once for all (1 to 8 outputs).
   */
  gemmMulti(a: Float32Array | Uint16Array, M: number, K: number, transA: boolean,
    outs: Array<[Float32Array | Uint16Array | Q4WeightArgs, Float32Array, number, boolean, boolean, boolean]>, bf16: boolean): number;
  /**
   * h (M,R) = s (x A^T), then y (M,N) += h B^T: gemmF32 / gemmBf16Mixed products as the
   * separate ops; with a base weight w (N,K), y = x W^T first (gemmMulti's x [W; A]^T);
   * h null: a scratch of the call's own.
   */
  gemmLowRank(x: Float32Array | Uint16Array, a: Float32Array | Uint16Array, b: Float32Array | Uint16Array, h: Float32Array | null,
    y: Float32Array, M: number, K: number, R: number, N: number, s: number, bf16: boolean, w?: Float32Array | Uint16Array | null): number;
  /** x (n) f32 -> y (n) bf16, round to nearest even. */
  castF32ToBf16(x: Float32Array, y: Uint16Array, n: number): number;
  /** x (n) bf16 -> y (n) f32, exact. */
  castBf16ToF32(x: Uint16Array, y: Float32Array, n: number): number;
  /** x (n) IEEE f16 -> y (n) f32, exact (NaNs quieted). */
  castF16ToF32(x: Uint16Array, y: Float32Array, n: number): number;
}
