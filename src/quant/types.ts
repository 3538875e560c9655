// A 4-bit weight exactly as bitsandbytes stores it (formats-and-features.md section 2.4):
// codes packed two per byte (element 2j in the high nibble), one absmax per block of
// `blocksize` consecutive elements of the row-major (N, K) matrix, optionally
// double-quantized (8-bit dynamic-map codes of absmax - offset, one f32 scale per 256).
import type { Tensor } from '../tensor/tensor.js';

export type QuantType = 'nf4' | 'fp4';

export interface NestedAbsmax {
  /** (nBlocks) u8 codes into `quantMap` of (absmax - offset) / nestedAbsmax[block / 256]. */
  codes: Tensor<'u8'>;
  /** (ceil(nBlocks / 256)) f32 scale of each group of 256 absmax codes. */
  absmax: Tensor<'f32'>;
  /** The 256-entry signed dynamic map (bitsandbytes create_dynamic_map). */
  quantMap: Float32Array;
  /** mean(absmax), added back after decoding. */
  offset: number;
  /** Always 256 in bitsandbytes. */
  blocksize: number;
}

export interface Quant4Weight {
  quantType: QuantType;
  /** (N, K) = (out_features, in_features) of the linear layer. */
  shape: readonly [number, number];
  /** Elements per absmax block: 32, 64 (default), 128, 256 ... 4096. */
  blocksize: number;
  /** (ceil(N*K / 2)) packed codes. */
  codes: Tensor<'u8'>;
  /** (ceil(N*K / blocksize)) f32 absmax, when not double-quantized. */
  absmax: Tensor<'f32'> | undefined;
  /** Double-quantized absmax, when bnb_4bit_use_double_quant. */
  nested: NestedAbsmax | undefined;
  /** The 16-entry code table (NF4 or FP4 values). */
  quantMap: Float32Array;
  /** dtype recorded in quant_state ("float32", "bfloat16", "float16"): the weight's dtype before quantization. */
  dtype: string;
}

/** Moves a freshly quantized weight's tensors into the persistent "weights" category. */
export function persistQuant4(q: Quant4Weight): Quant4Weight {
  q.codes.persist('weights');
  q.absmax?.persist('weights');
  q.nested?.codes.persist('weights');
  q.nested?.absmax.persist('weights');
  return q;
}
