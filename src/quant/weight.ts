// Checks and plumbing shared by both backends' QuantOps: option validation, the f32
// values of a weight to quantize, assembling a Quant4Weight, decoding its absmax.
import { ConfigError, ShapeError } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';
import { bf16ToF32 } from '../backend/ref/gemm.js';
import { dequantize4, doubleQuantize, NESTED_BLOCKSIZE, nestedAbsmaxAt, type NestedValues, type Quantize8 } from './blockwise.js';
import { dynamicMap, quantTable } from './tables.js';
import type { Quant4Weight, QuantType } from './types.js';

export interface Quant4Options {
  quantType: QuantType;
  blocksize: number;
  doubleQuant: boolean;
}

/** bitsandbytes' valid 4-bit blocksizes (functional.py quantize_4bit). */
export const BLOCKSIZES: readonly number[] = [32, 64, 128, 256, 512, 1024, 2048, 4096];

/** w (N, K) f32|bf16 and the options -> [N, K]; ShapeError / ConfigError otherwise. */
export function checkQuantize(w: Tensor, opts: Quant4Options): [number, number] {
  if (w.shape.length !== 2 || (w.dtype !== 'f32' && w.dtype !== 'bf16')) {
    throw new ShapeError(`quantize4bit: w must be a 2-D f32 or bf16 (N, K) matrix, got ${w.dtype} [${w.shape.join(', ')}]`);
  }
  if (opts.quantType !== 'nf4' && opts.quantType !== 'fp4') {
    throw new ConfigError(`quantize4bit: quantType ${String(opts.quantType)} is not nf4 or fp4`, 'set bnb_4bit_quant_type to "nf4" (QLoRA) or "fp4"');
  }
  if (!BLOCKSIZES.includes(opts.blocksize)) {
    throw new ConfigError(`quantize4bit: blocksize ${opts.blocksize} is not one of ${BLOCKSIZES.join(', ')}`, 'use blocksize 64 (the bitsandbytes default)');
  }
  return [w.shape[0] ?? 0, w.shape[1] ?? 0];
}

/** The elements of an f32|bf16 tensor as f32 values (bf16 decoded exactly). */
export function valuesF32(w: Tensor): Float32Array {
  const d = w.data;
  if (d instanceof Float32Array) return d;
  return Float32Array.from(d, bf16ToF32);
}

/** dtype name recorded in quant_state (torch's str(dtype) without "torch."). */
export function dtypeName(w: Tensor): string {
  return w.dtype === 'bf16' ? 'bfloat16' : w.dtype === 'f16' ? 'float16' : 'float32';
}

/**
 * Assembles a Quant4Weight from its packed codes and absmax (persistent 'weights'
 * tensors), double-quantizing the absmax when asked.
 */
export function buildWeight(shape: [number, number], opts: Quant4Options, dtype: string, codes: Uint8Array, absmax: Float32Array,
  quantize8?: Quantize8): Quant4Weight {
  const q: Quant4Weight = {
    quantType: opts.quantType,
    shape,
    blocksize: opts.blocksize,
    codes: Tensor.from([codes.length], 'u8', codes, 'weights'),
    absmax: undefined,
    nested: undefined,
    quantMap: quantTable(opts.quantType).slice(),
    dtype,
  };
  if (!opts.doubleQuant) {
    q.absmax = Tensor.from([absmax.length], 'f32', absmax, 'weights');
    return q;
  }
  const dq = doubleQuantize(absmax, quantize8);
  q.nested = {
    codes: Tensor.from([dq.codes.length], 'u8', dq.codes, 'weights'),
    absmax: Tensor.from([dq.absmax.length], 'f32', dq.absmax, 'weights'),
    quantMap: dynamicMap().slice(),
    offset: dq.offset,
    blocksize: NESTED_BLOCKSIZE,
  };
  return q;
}

/** The nested absmax of q as typed arrays (undefined when not double-quantized). */
export function nestedValues(q: Quant4Weight): NestedValues | undefined {
  const n = q.nested;
  if (n === undefined) return undefined;
  return { codes: n.codes.data, absmax: n.absmax.data, map: n.quantMap, offset: n.offset, blocksize: n.blocksize };
}

/** Checks that q's arrays hold what its shape and blocksize need; returns [N, K, nBlocks]. */
export function checkWeight(op: string, q: Quant4Weight): [number, number, number] {
  const [N, K] = q.shape;
  const n = N * K, blocks = Math.ceil(n / q.blocksize);
  const bad = (what: string): never => {
    throw new ShapeError(`${op}: 4-bit weight [${N}, ${K}] blocksize ${q.blocksize}: ${what}`);
  };
  if (!Number.isInteger(N) || !Number.isInteger(K) || N < 0 || K < 0 || !BLOCKSIZES.includes(q.blocksize)) bad('invalid shape or blocksize');
  if (q.codes.dtype !== 'u8' || q.codes.size < Math.ceil(n / 2)) bad(`codes hold ${q.codes.size} bytes, need ${Math.ceil(n / 2)}`);
  if (q.quantMap.length !== 16) bad(`quantMap has ${q.quantMap.length} entries, need 16`);
  const nested = q.nested;
  if (nested === undefined) {
    if (q.absmax === undefined || q.absmax.size < blocks) bad(`absmax holds ${q.absmax?.size ?? 0} values, need ${blocks}`);
  } else {
    const groups = Math.ceil(blocks / nested.blocksize);
    if (nested.codes.size < blocks || nested.absmax.size < groups || nested.quantMap.length !== 256 || !(nested.blocksize > 0)) {
      bad(`nested absmax: ${nested.codes.size} codes (need ${blocks}), ${nested.absmax.size} scales (need ${groups}), map of ${nested.quantMap.length} (need 256)`);
    }
  }
  return [N, K, blocks];
}

/** The f32 absmax of every block of q (decoding the nested form when double-quantized). */
export function absmaxValues(q: Quant4Weight): Float32Array {
  const [, , blocks] = checkWeight('absmax', q);
  const nv = nestedValues(q);
  if (nv === undefined) return (q.absmax?.data ?? new Float32Array(0)).subarray(0, blocks);
  return Float32Array.from({ length: blocks }, (_, b) => nestedAbsmaxAt(nv, b));
}

/** The f32 values (N*K) a 4-bit weight stands for. */
export function dequantizedValues(q: Quant4Weight): Float32Array {
  const [N, K] = checkWeight('dequantize4bit', q);
  return dequantize4(q.codes.data, absmaxValues(q), q.quantMap, N * K, q.blocksize);
}
