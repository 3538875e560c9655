// The typed list of ops every backend implements: the native backend (C++ kernels via
// the addon) and the reference backend (pure TypeScript, float64 arithmetic), which the
// parity tests use as the specification. Ops allocate their outputs (activations, so
// they join the current scope) and never modify their inputs unless the name says so.
//
// Shape vocabulary (STYLE.md rule 4): B batch, T tokens, S keys (cache length), C
// channels, H query heads, Hkv key/value heads, D head dim, F ffn width, V vocab.
import type { Tensor } from '../tensor/tensor.js';
import type { FloatDType } from '../tensor/dtype.js';
import type { Quant4Weight, QuantType } from '../quant/types.js';

/**
 * One output of Backend.matmulMultiInto: c [+]= op(a) op(b) with a dense b, or (bf16 only)
 * c = a W^T (a W with backward) with a 4-bit W decoded to bf16 (as linear4bit /
 * linear4bitBackwardInput with bf16 compute; c is written, a not transposed).
 */
export interface MultiOutput {
  c: FTensor;
  b: Tensor | { quant: Quant4Weight; backward: boolean };
  transB?: boolean;
  accumulate?: boolean;
}

/** RoPE fused into attention: the rope op's positions (T) and invFreq (D/2). */
export interface AttentionRope {
  positions: Int32Array;
  invFreq: Float32Array;
}

/**
 * A float activation or gradient: f32, or f64 on the reference backend (finite-difference
 * gradient checks). Ops return the dtype of their float inputs; the native backend
 * accepts f32 only (ShapeError otherwise).
 */
export type FTensor = Tensor<FloatDType>;

/** GEMM family (gemm helper): dense products and dtype conversion. */
export interface GemmOps {
  /**
   * General product with f32 accumulation: c (M,N) = op(a) op(b), op = transpose when
   * asked. a (M,K) or (K,M); b (K,N) or (N,K). Inputs f32 or bf16; output f32. With one
   * bf16 and one f32 input the f32 one is rounded to bf16 (as cast) inside the product:
   * a bf16 product, bit-identical to cast-then-matmul without the cast pass.
   */
  matmul(a: Tensor, b: Tensor, opts?: { transA?: boolean; transB?: boolean }): Tensor<'f32'>;
  /**
   * bf16 product into c (M,N) (f32; = or += with accumulate): every f32 operand is rounded
   * to bf16 (as cast) inside the product, bf16 ones are used as they are; f32 accumulation.
   * Bit-identical to casting both to bf16 and calling matmul. Autocast's weight gradient
   * dW = dY^T X uses it with f32 dY and X.
   */
  matmulBf16Into(c: FTensor, a: Tensor, b: Tensor, opts?: { transA?: boolean; transB?: boolean; accumulate?: boolean }): void;
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
   * bf16 (autocast): the products may take bf16-rounded operands, as PyTorch's bf16
   * attention does: q, k, v and the softmax numerators are rounded to bf16, the softmax
   * and the sums stay f32, and out = (sum_s bf16(e_s) v_s) / sum_s e_s. The native backend
   * does so where the CPU has bf16 dot products (avx512_bf16) and runs f32 elsewhere; the
   * reference always rounds.
   * rope (training, no cache: s = T = Smax): q and k are the projections before RoPE, and
   * the result is attention(rope(q), rope(k), v) bit for bit, without the rotated copies.
   */
  attention(q: Tensor<'f32'>, k: Tensor<'f32'>, v: Tensor<'f32'>, s: number, scale: number, bf16?: boolean, rope?: AttentionRope): Tensor<'f32'>;
  /** silu(gate) * up, element-wise: (N, F), (N, F) -> (N, F). */
  siluMul(gate: Tensor<'f32'>, up: Tensor<'f32'>): Tensor<'f32'>;
  /** a + b, same shapes. */
  add(a: Tensor<'f32'>, b: Tensor<'f32'>): Tensor<'f32'>;
  /** Row softmax of x (N, V) / temperature (temperature > 0) -> (N, V). */
  softmax(x: Tensor<'f32'>, temperature: number): Tensor<'f32'>;
  /** Index of the largest value in each row of x (N, V) -> N ids (first one on ties). */
  argmax(x: Tensor<'f32'>): Int32Array;
}

/**
 * Backward ops and in-place updates used by training. Gradients are f32 (f64 on the
 * reference backend). "Into"/"InPlace" ops write their first argument; the rest allocate.
 */
export interface GradOps {
  /** c (M,N) = op(a) op(b), or += with accumulate. a, b f32|bf16 (both the same) or f64; c f32|f64. */
  matmulInto(c: FTensor, a: Tensor, b: Tensor, opts?: { transA?: boolean; transB?: boolean; accumulate?: boolean }): void;
  /**
   * The low-rank branch of a LoRA layer: h (M,R) = scaling * (x A^T), then y (M,N) += h B^T,
   * x (M,K), A (R,K), B (N,R). Each product is matmulBf16Into when `bf16` or an operand is
   * bf16, else matmulInto, and the scale is scaleInPlace: the same bits as those three calls
   * (the native backend makes them in one). With `base` W (N,K), a dense weight, y is
   * first overwritten with x W^T, the same kind of product: the forward of a LoRA linear
   * without bias or dropout in one call (native: x [W; A]^T shares x's packing as
   * matmulMultiInto does). h undefined: the call keeps h in a scratch of its own (nothing
   * reads it afterwards, e.g. without a tape).
   */
  lowRankInto(y: FTensor, x: Tensor, a: Tensor, b: Tensor, h: FTensor | undefined, scaling: number, bf16: boolean, base?: Tensor): void;
  /** dst (N) (+)= column sums of x (M, N): the bias gradient. */
  sumRowsInto(dst: FTensor, x: FTensor, accumulate: boolean): void;
  /** dTable (V, C) += dOut (N, C) rows scattered to ids (N). */
  embeddingBackward(ids: Tensor<'i32'>, dOut: FTensor, dTable: FTensor): void;
  /**
   * x (N, C), w (C), dOut (N, C) -> dx (N, C); dw (C) += its gradient when given. With
   * `into` (x's gradient so far, as the residual stream has), dx is added to it in place
   * and `into` returned.
   */
  rmsnormBackward(x: FTensor, w: FTensor, eps: number, dOut: FTensor, dw: FTensor | undefined, into?: FTensor): FTensor;
  /** dOut (B, T, H, D) -> dx: the transpose of rope (rotation by -angle). */
  ropeBackward(dOut: FTensor, positions: Int32Array, invFreq: Float32Array): FTensor;
  /**
   * Backward of attention(q, k, v, s, scale) with k, v (B, S', Hkv, D) holding at least s
   * rows: recomputes the probabilities row by row (never a T x S matrix per head).
   * -> dq (B, T, H, D), dk and dv shaped like k and v (rows >= s are zero).
   * bf16: as attention's; q, k, v, dOut rounded, P = bf16(e / sum e), dS = bf16(P (dP -
   * sum P dP) scale), then dq = dS k, dk = dS^T q, dv = P^T dOut.
   * rope: as attention's; dq and dk are then the gradients of the unrotated q and k
   * (ropeBackward of the rotated ones).
   */
  attentionBackward(q: FTensor, k: FTensor, v: FTensor, s: number, scale: number, dOut: FTensor, bf16?: boolean, rope?: AttentionRope): { dq: FTensor; dk: FTensor; dv: FTensor };
  /** gate, up, dOut (N, F) -> d gate, d up for silu(gate) * up. */
  siluMulBackward(gate: FTensor, up: FTensor, dOut: FTensor): { dGate: FTensor; dUp: FTensor };
  /**
   * Cross-entropy of a chunk of rows: logits (N, V), labels (N) with -100 = ignored.
   * Overwrites logits with gradScale * d loss_i / d logits (softmax - onehot; zero rows
   * for ignored labels) and returns the per-row losses (N) in float64 (0 where ignored).
   * predicted (N), when given, receives each row's argmax (as `argmax`) before the
   * overwrite: token accuracy without a second pass over the logits.
   */
  crossEntropyInPlace(logits: FTensor, labels: Int32Array, gradScale: number, predicted?: Int32Array): Float64Array;
  /**
   * Inverted dropout with a counter-based mask: element i is kept iff hash(seed, i) >= p
   * (so the same seed gives the same mask, and backward is dropout(dOut, p, seed)).
   * Kept elements are scaled by 1 / (1 - p). p in [0, 1).
   */
  dropout(x: FTensor, p: number, seed: number): FTensor;
  /** a + s * b, same shapes. */
  addScaled(a: FTensor, b: FTensor, s: number): FTensor;
  /** dst += s * src (same element count). */
  addScaledInPlace(dst: FTensor, src: FTensor, s: number): void;
  /** x *= s. */
  scaleInPlace(x: FTensor, s: number): void;
  /** Sum of squares in float64 with a fixed reduction order (same bits every run). */
  sumSquares(x: FTensor): number;
  /**
   * One AdamW step over flat f32 buffers of equal size, as torch.optim.AdamW computes it:
   * g = grad * gradScale; param *= 1 - lr * weightDecay; m = b1 m + (1 - b1) g;
   * v = b2 v + (1 - b2) g^2; param -= lr / (1 - b1^step) * m / (sqrt(v) / sqrt(1 - b2^step) + eps).
   */
  adamw(param: FTensor, grad: FTensor, m: FTensor, v: FTensor, h: AdamwStep): void;
}

export interface AdamwStep {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based step count, for bias correction. */
  step: number;
  /** Multiplies the gradient first (global-norm clipping, 1 / accumulation). */
  gradScale: number;
}

/** 4-bit (bitsandbytes NF4/FP4) quantization and the fused 4-bit linear layer. */
export interface QuantOps {
  /**
   * Blockwise 4-bit quantization of w (N, K) f32|bf16 exactly as bitsandbytes: absmax per
   * block, nearest code (ties to the lower code), element 2j in the high nibble; with
   * doubleQuant the absmax values are quantized again (offset = mean, 8-bit dynamic map,
   * blocks of 256).
   */
  quantize4bit(w: Tensor, opts: { quantType: QuantType; blocksize: number; doubleQuant: boolean }): Quant4Weight;
  /** The f32 (N, K) matrix a 4-bit weight stands for (for merging and tests). */
  dequantize4bit(q: Quant4Weight): Tensor<'f32'>;
  /**
   * y (M, N) = x (M, K) W^T (+ bias) with W dequantized tile by tile inside the GEMM
   * (never materialised whole). computeDtype bf16 rounds x and the dequantized W to bf16.
   */
  linear4bit(x: FTensor, q: Quant4Weight, bias: FTensor | undefined, computeDtype: 'f32' | 'bf16'): Tensor<'f32'>;
  /** dx (M, K) = dy (M, N) W, dequantizing the same way (no weight gradient: W is frozen). */
  linear4bitBackwardInput(dy: FTensor, q: Quant4Weight, computeDtype: 'f32' | 'bf16'): Tensor<'f32'>;
  /**
   * Several products sharing the operand a, each bit-identical to its own call: with bf16
   * (the default) matmulBf16Into, or the 4-bit linear with bf16 compute; with bf16 false
   * matmulInto, every operand f32. The native backend packs a once for all of them. The
   * fused LoRA layer computes x W^T with x A^T, and dY W with dY B, this way. 1 to 8 outputs.
   */
  matmulMultiInto(a: Tensor, outs: readonly MultiOutput[], opts?: { transA?: boolean; bf16?: boolean }): void;
}

export interface Backend extends GemmOps, NnOps, GradOps, QuantOps {
  readonly name: 'native' | 'ref';
}
