// Reference GEMM ops in pure TypeScript: the specification the native kernels are tested
// against. Sums run in float64 (one rounding to f32 at the end); bf16 and f16 inputs are
// decoded exactly; f32 -> bf16 rounds to nearest even as ft_f32_to_bf16 (native/src/ftune.h).
import { Tensor } from '../../tensor/tensor.js';
import type { GemmOps } from '../backend.js';
import { castTarget, linearDims, matmulDims, checkGemm, type GemmSpec } from '../native/gemm.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** f32 value -> bf16 bit pattern, round to nearest even; NaN -> quiet NaN (high half | 0x40). */
export function f32ToBf16(x: number): number {
  f32[0] = x;
  const u = u32[0] ?? 0;
  if ((u & 0x7fffffff) >>> 0 > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff;
  return Math.floor((u + 0x7fff + ((u >>> 16) & 1)) / 65536) & 0xffff;
}

/** bf16 bit pattern -> value (exact). */
export function bf16ToF32(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0] ?? 0;
}

/** IEEE binary16 bit pattern -> f32 bit pattern (exact; NaN payload kept, quiet bit set). */
export function f16ToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f, man = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (man << 13) | (man !== 0 ? 0x400000 : 0)) >>> 0;
  f32[0] = exp === 0 ? man * 2 ** -24 : (1 + man / 1024) * 2 ** (exp - 15);
  return ((u32[0] ?? 0) | sign) >>> 0;
}

/** IEEE binary16 bit pattern -> value. */
export function f16ToF32(h: number): number {
  u32[0] = f16ToF32Bits(h);
  return f32[0] ?? 0;
}

/** Element values of an f32, bf16 or f16 tensor as float64. */
function valuesOf(x: Tensor): Float64Array {
  const d = x.data;
  const decode = x.dtype === 'bf16' ? bf16ToF32 : x.dtype === 'f16' ? f16ToF32 : (v: number): number => v;
  const out = new Float64Array(x.size);
  for (let i = 0; i < x.size; i++) out[i] = decode(d[i] ?? 0);
  return out;
}

/** c (M,N) [+]= op(a) op(b) [+ bias], float64 sums; same contract as native gemmInto. */
export function refGemmInto(c: Tensor<'f32'>, a: Tensor, b: Tensor, spec: GemmSpec): void {
  checkGemm('gemm', a, b, c, spec);
  const { M, N, K } = spec;
  const av = valuesOf(a), bv = valuesOf(b), cd = c.data, bias = spec.bias?.data;
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = spec.accumulate ? (cd[i * N + j] ?? 0) : 0;
      if (bias !== undefined) s += bias[j] ?? 0;
      for (let k = 0; k < K; k++) {
        const x = av[spec.transA ? k * M + i : i * K + k] ?? 0;
        const y = bv[spec.transB ? j * K + k : k * N + j] ?? 0;
        s += x * y;
      }
      cd[i * N + j] = s;
    }
  }
}

/** x (any shape) f32|bf16|f16 -> bf16 bits, round to nearest even. */
function roundToBf16(x: Tensor): Tensor<'bf16'> {
  const v = valuesOf(x);
  const y = Tensor.zeros(x.shape, 'bf16');
  for (let i = 0; i < v.length; i++) y.data[i] = f32ToBf16(v[i] ?? 0);
  return y;
}

export const refGemm: GemmOps = {
  matmul(a, b, opts = {}) {
    const spec = matmulDims(a, b, opts.transA ?? false, opts.transB ?? false);
    const c = Tensor.zeros([spec.M, spec.N], 'f32');
    refGemmInto(c, a, b, spec);
    return c;
  },

  linear(x, w, bias) {
    const { spec, out } = linearDims(x, w, bias);
    const y = Tensor.zeros(out, 'f32');
    if (bias !== undefined) spec.bias = bias;
    refGemmInto(y, w.dtype === 'bf16' ? roundToBf16(x) : x, w, spec);
    return y;
  },

  cast(x, dtype) {
    castTarget(x, dtype);
    const y = Tensor.zeros(x.shape, dtype);
    const yd: Float32Array | Uint16Array = y.data;
    if (x.dtype === dtype) yd.set(x.data);
    else if (yd instanceof Uint16Array) yd.set(roundToBf16(x).data);
    else {
      // Bit patterns, not values: a NaN read into a JS number may lose its payload.
      const widen = x.dtype === 'f16' ? f16ToF32Bits : (h: number): number => ((h & 0xffff) << 16) >>> 0;
      new Uint32Array(yd.buffer, yd.byteOffset, yd.length).set(Array.from(x.data, widen));
    }
    return y;
  },
};
