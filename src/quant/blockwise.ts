// Blockwise quantization in pure TypeScript, element for element what bitsandbytes
// computes (formats-and-features.md section 2.4): the specification the native kernels
// (native/src/quant_*.cc) are tested against. All arithmetic is float32 (Math.fround
// after every operation), as torch does it on float32 tensors.
import { code4, dynamicMap, midpoints, nearestSorted } from './tables.js';
import type { QuantType } from './types.js';

const f32 = Math.fround;

/** bitsandbytes' default op clamps absmax to this before taking its reciprocal, so an all-zero block scales to 0. */
export const ABSMAX_MIN = f32(1e-38);

/** absmax of the first nested blocksize of bitsandbytes double quantization. */
export const NESTED_BLOCKSIZE = 256;

/** Block b's reciprocal scale, 1 / max(absmax, 1e-38) in f32. */
function reciprocal(absmax: number): number {
  return f32(1 / Math.max(absmax, ABSMAX_MIN));
}

/** absmax (ceil(n / blocksize)) of values (n): max |x| of each block of consecutive elements. */
export function blockAbsmax(values: Float32Array, blocksize: number): Float32Array {
  const blocks = Math.ceil(values.length / blocksize);
  const out = new Float32Array(blocks);
  for (let b = 0; b < blocks; b++) {
    let m = 0;
    for (let i = b * blocksize, e = Math.min(values.length, i + blocksize); i < e; i++) m = Math.max(m, Math.abs(values[i] ?? 0));
    out[b] = m;
  }
  return out;
}

/**
 * 4-bit codes of values (n) -> packed (ceil(n/2)) with element 2j in the high nibble and
 * absmax (ceil(n/blocksize)). Scaled value s = clamp(x * (1/absmax), -1, 1) in f32; code
 * = nearest table entry (code4). An odd n is padded with one 0.0 element (quantized, as
 * bitsandbytes pads the scaled values before packing).
 */
export function quantize4(values: Float32Array, blocksize: number, type: QuantType): { codes: Uint8Array; absmax: Float32Array } {
  const n = values.length;
  const absmax = blockAbsmax(values, blocksize);
  const codes = new Uint8Array(Math.ceil(n / 2));
  for (let b = 0; b < absmax.length; b++) {
    const r = reciprocal(absmax[b] ?? 0);
    for (let i = b * blocksize, e = Math.min(n, i + blocksize); i < e; i++) {
      const s = Math.min(1, Math.max(-1, f32((values[i] ?? 0) * r)));
      const c = code4(s, type);
      codes[i >> 1] = (codes[i >> 1] ?? 0) | ((i & 1) === 0 ? c << 4 : c);
    }
  }
  if (n % 2 === 1) codes[n >> 1] = (codes[n >> 1] ?? 0) | code4(0, type);
  return { codes, absmax };
}

/** mean(absmax) as an f32 scalar: a float64 sum in index order, divided, rounded once. */
export function absmaxMean(absmax: Float32Array): number {
  let s = 0;
  for (const v of absmax) s += v;
  return absmax.length === 0 ? 0 : f32(s / absmax.length);
}

/**
 * bitsandbytes quantize_blockwise with the dynamic map: values (n) -> codes (n) u8 and
 * absmax (ceil(n/blocksize)) f32. Nearest map entry of clamp(x * (1/absmax), -1, 1),
 * ties to the lower code.
 */
export function quantize8(values: Float32Array, blocksize: number, map: Float32Array): { codes: Uint8Array; absmax: Float32Array } {
  const absmax = blockAbsmax(values, blocksize);
  const t = midpoints(map);
  const codes = new Uint8Array(values.length);
  for (let b = 0; b < absmax.length; b++) {
    const r = reciprocal(absmax[b] ?? 0);
    for (let i = b * blocksize, e = Math.min(values.length, i + blocksize); i < e; i++) {
      codes[i] = nearestSorted(Math.min(1, Math.max(-1, f32((values[i] ?? 0) * r))), t);
    }
  }
  return { codes, absmax };
}

/** An 8-bit blockwise quantizer of centered absmax values (the TS one or a native kernel). */
export type Quantize8 = (centered: Float32Array) => { codes: Uint8Array; absmax: Float32Array };

/**
 * Double quantization of 4-bit absmax (nBlocks): offset = mean(absmax), then absmax -
 * offset (f32) quantized in blocks of 256 with the dynamic map.
 */
export function doubleQuantize(absmax: Float32Array, q8?: Quantize8): { codes: Uint8Array; absmax: Float32Array; offset: number } {
  const offset = absmaxMean(absmax);
  const centered = absmax.map((a) => f32(a - offset));
  return { ...(q8 ?? ((v: Float32Array) => quantize8(v, NESTED_BLOCKSIZE, dynamicMap())))(centered), offset };
}

/** The nested form of a 4-bit weight's absmax, as typed arrays. */
export interface NestedValues {
  codes: Uint8Array;
  absmax: Float32Array;
  map: Float32Array;
  offset: number;
  blocksize: number;
}

/** absmax of block b decoded from its nested form: map[code] * nestedAbsmax + offset, f32. */
export function nestedAbsmaxAt(nested: NestedValues, b: number): number {
  const scale = nested.absmax[Math.floor(b / nested.blocksize)] ?? 0;
  return f32(f32((nested.map[nested.codes[b] ?? 0] ?? 0) * scale) + nested.offset);
}

/** Element i of a packed 4-bit code array (element 2j in the high nibble). */
export function nibble(codes: Uint8Array, i: number): number {
  const byte = codes[i >> 1] ?? 0;
  return (i & 1) === 0 ? byte >> 4 : byte & 15;
}

/** The n values a 4-bit weight stands for: table[code] * absmax of its block, f32. */
export function dequantize4(codes: Uint8Array, absmax: Float32Array, table: Float32Array, n: number, blocksize: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = f32((table[nibble(codes, i)] ?? 0) * (absmax[Math.floor(i / blocksize)] ?? 0));
  return out;
}
