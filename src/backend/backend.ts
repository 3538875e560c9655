// The typed list of ops every backend implements: the native backend (C++ kernels via
// the addon) and the reference backend (pure TypeScript, float64 arithmetic), which the
// parity tests use as the specification. Ops allocate their outputs (activations, so
// they join the current scope) and never modify their inputs unless the name says so.
//
// Shape vocabulary (STYLE.md rule 4): B batch, T tokens, S keys (cache length), C
// channels, H query heads, Hkv key/value heads, D head dim, F ffn width, V vocab.
import type { Tensor } from '../tensor/tensor.js';

/** GEMM family (gemm helper): dense products and dtype conversion. */
export interface GemmOps {
  /**
   * General product with f32 accumulation: c (M,N) = op(a) op(b), op = transpose when
   * asked. a (M,K) or (K,M); b (K,N) or (N,K). Inputs both f32 or both bf16; output f32.
   */
  matmul(a: Tensor, b: Tensor, opts?: { transA?: boolean; transB?: boolean }): Tensor<'f32'>;
  /**
   * Linear layer: x (..., K) times w (N, K) transposed, plus bias (N) if given -> (..., N) f32.
   * w is f32 or bf16; with bf16 w, x is rounded to bf16 and products accumulate in f32.
   */
  linear(x: Tensor<'f32'>, w: Tensor, bias?: Tensor<'f32'>): Tensor<'f32'>;
  /** Element-wise dtype conversion among f32, bf16, f16 (f16 only as a source). */
  cast<D extends 'f32' | 'bf16'>(x: Tensor, dtype: D): Tensor<D>;
}

/** Llama forward ops (ops helper). */
export interface NnOps {
  /** ids (N) i32, table (V, C) f32|bf16 -> (N, C) f32. */
  embedding(ids: Tensor<'i32'>, table: Tensor): Tensor<'f32'>;
  /** x (N, C), w (C) -> (N, C): w * x / sqrt(mean(x^2) + eps), computed in f32. */
  rmsnorm(x: Tensor<'f32'>, w: Tensor<'f32'>, eps: number): Tensor<'f32'>;
  /**
   * HF rotate_half RoPE: x (B, T, H, D) -> same shape. Token t of every batch row sits
   * at position positions[t]; angle = position * invFreq[j] for pair (j, j + D/2).
   * invFreq (D/2) carries rope_theta and rope_scaling (computed by the model config).
   */
  rope(x: Tensor<'f32'>, positions: Int32Array, invFreq: Float32Array): Tensor<'f32'>;
  /**
   * Causal grouped-query attention. q (B, T, H, D); k, v (B, Smax, Hkv, D) caches of
   * which the first S rows are valid; query t sits at position S - T + t and sees keys
   * 0..S-T+t. Scores scaled by `scale` (1/sqrt(D)). -> (B, T, H, D).
   */
  attention(q: Tensor<'f32'>, k: Tensor<'f32'>, v: Tensor<'f32'>, s: number, scale: number): Tensor<'f32'>;
  /** silu(gate) * up, element-wise: (N, F), (N, F) -> (N, F). */
  siluMul(gate: Tensor<'f32'>, up: Tensor<'f32'>): Tensor<'f32'>;
  /** a + b, same shapes. */
  add(a: Tensor<'f32'>, b: Tensor<'f32'>): Tensor<'f32'>;
  /** Row softmax of x (N, V) / temperature (temperature > 0) -> (N, V). */
  softmax(x: Tensor<'f32'>, temperature: number): Tensor<'f32'>;
  /** Index of the largest value in each row of x (N, V) -> N ids (first one on ties). */
  argmax(x: Tensor<'f32'>): Int32Array;
}

export interface Backend extends GemmOps, NnOps {
  readonly name: 'native' | 'ref';
}
