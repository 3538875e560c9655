// Native backward-op exports (native/src/grad_bind.cc). Every function returns the
// kernel's ft_status (0 = ok); the wrapper in grad.ts passes it to check(). Dims are
// passed explicitly; the kernel checks every buffer against them before touching memory.
export interface GradAddon {
  /** x (M, N) -> dst (N) = [dst +] column sums. */
  gradSumRowsF32(x: Float32Array, dst: Float32Array, m: number, n: number, accumulate: boolean): number;
  /** ids (N), dOut (N, C) -> dTable (V, C) += rows scattered to ids. An id outside [0, V) is status 2. */
  gradEmbeddingBwdF32(ids: Int32Array, dOut: Float32Array, dTable: Float32Array, n: number, v: number, c: number): number;
  /** x (N, C), w (C), dOut (N, C) -> dx (N, C), or dx += with accumulate; dw (C) += when not null. */
  gradRmsnormBwdF32(x: Float32Array, w: Float32Array, dOut: Float32Array, dx: Float32Array, dw: Float32Array | null,
    n: number, c: number, eps: number, accumulate: boolean): number;
  /** dOut (B, T, H, D), positions (T), invFreq (D/2) -> dx (B, T, H, D). */
  gradRopeBwdF32(dOut: Float32Array, positions: Int32Array, invFreq: Float32Array, dx: Float32Array,
    b: number, t: number, h: number, d: number): number;
  /** q, dOut (B, T, H, D), k, v (B, Smax, Hkv, D) -> dq (B, T, H, D), dk, dv (B, Smax, Hkv, D); bf16 as opsAttentionF32. */
  gradAttentionBwdF32(q: Float32Array, k: Float32Array, v: Float32Array, dOut: Float32Array, dq: Float32Array,
    dk: Float32Array, dv: Float32Array, b: number, t: number, h: number, hkv: number, d: number, smax: number,
    s: number, scale: number, bf16: boolean, positions?: Int32Array | null, invFreq?: Float32Array | null): number;
  /** gate, up, dOut (n) -> dGate, dUp (n). */
  gradSiluMulBwdF32(gate: Float32Array, up: Float32Array, dOut: Float32Array, dGate: Float32Array, dUp: Float32Array, n: number): number;
  /** logits (N, V) -> gradient in place, loss (N) f64; a label outside [0, V) other than -100 is status 2. */
  gradCrossEntropyF32(logits: Float32Array, labels: Int32Array, loss: Float64Array, n: number, v: number, gradScale: number, predicted?: Int32Array | null): number;
  /** x (n) -> out (n), inverted dropout with the splitmix64 counter mask. */
  gradDropoutF32(x: Float32Array, out: Float32Array, n: number, p: number, seed: number): number;
  /** a, b (n) -> out (n) = a + s b; out may be a. */
  gradAddScaledF32(a: Float32Array, b: Float32Array, out: Float32Array, n: number, s: number): number;
  /** x (n) *= s. */
  gradScaleF32(x: Float32Array, n: number, s: number): number;
  /** x (n) -> out[0] = sum of squares in float64. */
  gradSumSquaresF32(x: Float32Array, n: number, out: Float64Array): number;
  /** One AdamW step over param, grad, m, v (n). */
  gradAdamwF32(param: Float32Array, grad: Float32Array, m: Float32Array, v: Float32Array, n: number, lr: number,
    beta1: number, beta2: number, eps: number, weightDecay: number, step: number, gradScale: number): number;
}
