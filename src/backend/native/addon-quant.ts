// Native 4-bit quantization exports (native/src/quant_bind.cc). Every function returns a
// status (0 ok, 1 a buffer too small, 2 a bad dimension or parameter, 4 out of memory);
// the wrapper passes it to check(). bf16 values travel as raw bit patterns.

/** A 4-bit weight as the kernels see it (native/src/quant.h q4_weight). */
export interface Q4WeightArgs {
  /** (ceil(N*K/2)) packed codes, element 2j in the high nibble. */
  codes: Uint8Array;
  /** (16) code values. */
  map: Float32Array;
  /** (nBlocks) f32 absmax, or null when double-quantized. */
  absmax: Float32Array | null;
  /** (nBlocks) 8-bit codes of absmax - offset (double quant), else null. */
  nestedCodes: Uint8Array | null;
  /** (ceil(nBlocks / nestedBlocksize)) nested scales, else null. */
  nestedAbsmax: Float32Array | null;
  /** (256) the dynamic map, else null. */
  nestedMap: Float32Array | null;
  offset: number;
  N: number;
  K: number;
  blocksize: number;
  nestedBlocksize: number;
}

export interface QuantAddon {
  /** w (n) f32 -> codes (ceil(n/2)), absmax (ceil(n/blocksize)); type 0 nf4, 1 fp4. */
  q4QuantizeF32(w: Float32Array, codes: Uint8Array, absmax: Float32Array, n: number, blocksize: number, type: number): number;
  /** The same from bf16 bit patterns (decoded exactly). */
  q4QuantizeBf16(w: Uint16Array, codes: Uint8Array, absmax: Float32Array, n: number, blocksize: number, type: number): number;
  /** x (n) -> codes (n) into the sorted map (256), absmax (ceil(n/blocksize)). */
  q8QuantizeF32(x: Float32Array, map: Float32Array, codes: Uint8Array, absmax: Float32Array, n: number, blocksize: number): number;
  /** W -> out (N*K) f32. */
  q4Dequantize(w: Q4WeightArgs, out: Float32Array): number;
  /** y (M,N) = x (M,K) W^T + bias; x f32, or bf16 patterns for bf16 compute. */
  q4Linear(w: Q4WeightArgs, x: Float32Array | Uint16Array, bias: Float32Array | null, y: Float32Array, M: number): number;
  /** dx (M,K) = dy (M,N) W; dy f32, or bf16 patterns for bf16 compute. */
  q4LinearBackward(w: Q4WeightArgs, dy: Float32Array | Uint16Array, dx: Float32Array, M: number): number;
}
