// The code tables of bitsandbytes 4-bit and 8-bit blockwise quantization
// (formats-and-features.md section 2.4): NF4 and FP4 (16 values each) and the signed
// 8-bit dynamic map used for double quantization, plus the decision thresholds that
// turn a scaled value into its nearest code.
import type { QuantType } from './types.js';

const f32 = Math.fround;

/**
 * NF4 (bitsandbytes functional.py get_4bit_type("nf4"), identical to the LUT in
 * csrc/kernels.cu): 7 negative normal quantiles, 0, 8 positive ones, divided by the max.
 * The hard-coded table is normative (re-deriving code 1 with scipy differs in the last bits).
 */
export const NF4 = Float32Array.from([
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
  -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
  0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
  0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
]);

/**
 * FP4 (get_4bit_type("fp4")): sign bit 0b1000 plus a 3-bit magnitude whose values by bit
 * pattern are 0, 0.0625, 8, 12, 4, 6, 2, 3, divided by 12 in f32 (torch div_). Not sorted.
 */
export const FP4 = Float32Array.from([0, 0.0625, 8, 12, 4, 6, 2, 3, -0, -0.0625, -8, -12, -4, -6, -2, -3], (v) => f32(v / 12));

/** The 16-entry table of a 4-bit type. */
export function quantTable(type: QuantType): Float32Array {
  return type === 'nf4' ? NF4 : FP4;
}

/**
 * torch.linspace(start, end, steps) in float32 as the CPU kernel's scalar path computes
 * it (RangeFactoriesKernel.cpp): step = (end - start) / (steps - 1) in f32, the first half
 * counted up from start, the second half down from end.
 */
function linspaceF32(start: number, end: number, steps: number): number[] {
  const s = f32(start), e = f32(end), step = f32(f32(e - s) / (steps - 1)), half = Math.floor(steps / 2);
  return Array.from({ length: steps }, (_, i) => (i < half ? f32(s + f32(step * i)) : f32(e - f32(step * (steps - i - 1)))));
}

/**
 * bitsandbytes create_dynamic_map(signed, max_exponent_bits, total_bits) (functional.py),
 * with torch's float32 arithmetic: for exponent i, the means of adjacent points of
 * linspace(0.1, 1, 2^(i + nonSign - maxExp) + 1) times 10^(i - maxExp + 1) (the Python
 * scalar is cast to f32 before the multiply), both signs when signed, then 0 and 1.0,
 * zero-padded to 2^totalBits and sorted. The default (true, 7, 8) has 256 entries in
 * [-0.99296875, 1].
 */
export function createDynamicMap(signed = true, maxExponentBits = 7, totalBits = 8): Float32Array {
  const data: number[] = [];
  const nonSign = totalBits - 1;
  const extra = 2 ** (nonSign - maxExponentBits) - 1;
  const level = (items: number, i: number): void => {
    const b = linspaceF32(0.1, 1, items);
    const scale = f32(10 ** (-(maxExponentBits - 1) + i));
    for (const sign of signed ? [1, -1] : [1]) {
      for (let j = 0; j + 1 < b.length; j++) data.push(f32(sign * scale * f32(((b[j] ?? 0) + (b[j + 1] ?? 0)) / 2)));
    }
  };
  for (let i = 0; i < maxExponentBits; i++) level(signed ? 2 ** (i + nonSign - maxExponentBits) + 1 : 2 ** (i + nonSign - maxExponentBits + 1) + 1, i);
  if (extra > 0) level(extra + 1, maxExponentBits - 1);
  data.push(0, 1);
  while (data.length < 2 ** totalBits) data.push(0);
  return Float32Array.from(data.sort((a, b) => a - b));
}

/** The default 8-bit map of double quantization (cached). */
let dynamic: Float32Array | undefined;
export function dynamicMap(): Float32Array {
  dynamic ??= createDynamicMap(true, 7, 8);
  return dynamic;
}

/**
 * Decision thresholds of a sorted table: the f32 midpoints (a + b) * 0.5f of adjacent
 * entries (what kernels.cu's dQuantizeNF4 tree and dQuantize's midpoint compare use).
 */
export function midpoints(sorted: Float32Array): Float32Array {
  return Float32Array.from({ length: sorted.length - 1 }, (_, i) => f32(((sorted[i] ?? 0) + (sorted[i + 1] ?? 0)) / 2));
}

/**
 * Index of the nearest entry of a sorted table: the number of thresholds strictly below
 * x (comparisons `x > t`, so a value exactly on a midpoint takes the lower code).
 */
export function nearestSorted(x: number, thresholds: Float32Array): number {
  let lo = 0, hi = thresholds.length;  // answer in [lo, hi]
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (x > (thresholds[mid] ?? 0)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const NF4_T = midpoints(NF4);
/** FP4 magnitudes sorted, and the code of each (kernels.cu dQuantizeFP4's tree order). */
const FP4_MAG_CODES = [0, 1, 6, 7, 4, 5, 2, 3];
const FP4_T = midpoints(Float32Array.from(FP4_MAG_CODES, (c) => FP4[c] ?? 0));

/**
 * The 4-bit code of a scaled value s in [-1, 1]. NF4: nearest table entry, ties to the
 * lower code. FP4 as kernels.cu dQuantizeFP4: sign bit when s < 0, then the nearest
 * magnitude of |s|, ties to the smaller magnitude.
 */
export function code4(s: number, type: QuantType): number {
  if (type === 'nf4') return nearestSorted(s, NF4_T);
  const sign = s < 0 ? 8 : 0;
  return sign + (FP4_MAG_CODES[nearestSorted(Math.abs(s), FP4_T)] ?? 0);
}
