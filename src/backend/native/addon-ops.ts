// Native Llama forward ops exports (native/src/ops_bind.cc). Every function returns the
// kernel's ft_status (0 = ok); the wrapper in nn.ts turns a non-zero one into a
// NativeError with check(). Dims are passed explicitly; the kernel checks every buffer
// against them before touching memory.
export interface OpsAddon {
  /** ids (N), table (V, C) f32 -> out (N, C). An id outside [0, V) is status 2. */
  opsEmbeddingF32(ids: Int32Array, table: Float32Array, out: Float32Array, n: number, v: number, c: number): number;
  /** ids (N), table (V, C) bf16 bits -> out (N, C) f32. */
  opsEmbeddingBf16(ids: Int32Array, table: Uint16Array, out: Float32Array, n: number, v: number, c: number): number;
  /** x (N, C), w (C) -> out (N, C). */
  opsRmsnormF32(x: Float32Array, w: Float32Array, out: Float32Array, n: number, c: number, eps: number): number;
  /** x (B, T, H, D), positions (T), invFreq (D/2) -> out (B, T, H, D). */
  opsRopeF32(x: Float32Array, positions: Int32Array, invFreq: Float32Array, out: Float32Array,
    b: number, t: number, h: number, d: number): number;
  /** q (B, T, H, D), k, v (B, Smax, Hkv, D) with s valid rows -> out (B, T, H, D); bf16: bf16 products where the CPU has them. */
  opsAttentionF32(q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array,
    b: number, t: number, h: number, hkv: number, d: number, smax: number, s: number, scale: number, bf16: boolean,
    positions?: Int32Array | null, invFreq?: Float32Array | null): number;
  /** gate (n), up (n) -> out (n) = silu(gate) * up. */
  opsSiluMulF32(gate: Float32Array, up: Float32Array, out: Float32Array, n: number): number;
  /** a (n), b (n) -> out (n) = a + b. */
  opsAddF32(a: Float32Array, b: Float32Array, out: Float32Array, n: number): number;
  /** x (N, V) -> out (N, V), row softmax of x / temperature. */
  opsSoftmaxF32(x: Float32Array, out: Float32Array, n: number, v: number, temperature: number): number;
  /** x (N, V) -> out (N) i32, first index of each row maximum (first NaN wins). */
  opsArgmaxF32(x: Float32Array, out: Int32Array, n: number, v: number): number;
}
