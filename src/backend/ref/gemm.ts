// Reference GEMM ops in pure TypeScript: the specification the native kernels are tested
// against. Sums run in float64 (one rounding to f32 at the end); bf16 and f16 inputs are
// decoded exactly; f32 -> bf16 rounds to nearest even as ft_f32_to_bf16 (native/src/ftune.h).
// matmul and linear also take f64 operands (all f64, result f64) for gradient checks.
import { ShapeError } from '../../errors.js';
import { Tensor, type Shape } from '../../tensor/tensor.js';
import type { FTensor, GemmOps } from '../backend.js';
import { castTarget, linearDims, matmulDims, checkGemm, type GemmSpec } from '../native/gemm.js';
import { fmt } from '../nn-checks.js';

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

/** Element values of an f32, f64, bf16 or f16 tensor as float64. */
function valuesOf(x: Tensor): Float64Array {
  const d = x.data;
  const decode = x.dtype === 'bf16' ? bf16ToF32 : x.dtype === 'f16' ? f16ToF32 : (v: number): number => v;
  const out = new Float64Array(x.size);
  for (let i = 0; i < x.size; i++) out[i] = decode(d[i] ?? 0);
  return out;
}

/** checkGemm, or for f64: a, b, c (and bias) all f64 with the element counts of `spec`. */
function checkRefGemm(a: Tensor, b: Tensor, c: Tensor, spec: Omit<GemmSpec, 'bias'> & { bias?: Tensor | undefined }): void {
  const { M, N, K, bias } = spec;
  if (a.dtype !== 'f64' && b.dtype !== 'f64' && c.dtype !== 'f64' && bias?.dtype !== 'f64') {
    checkGemm('gemm', a, b, c, { ...spec, bias: bias === undefined ? undefined : (bias as Tensor<'f32'>) });
    return;
  }
  const all = [a, b, c, ...(bias === undefined ? [] : [bias])];
  if (all.some((t) => t.dtype !== 'f64')) {
    throw new ShapeError(`gemm: with f64, a, b, c and bias must all be f64; got a ${a.dtype}, b ${b.dtype}, c ${c.dtype}${bias ? `, bias ${bias.dtype}` : ''}`);
  }
  if (a.size !== M * K || b.size !== K * N || c.size !== M * N || (bias !== undefined && bias.size !== N)) {
    throw new ShapeError(`gemm: a ${fmt(a.shape)}, b ${fmt(b.shape)}, c ${fmt(c.shape)} do not fit M=${M} N=${N} K=${K}`);
  }
}

/**
 * c (M,N) [+]= op(a) op(b) [+ bias], float64 sums; native gemmInto's contract, plus f64:
 * with a bf16 operand (or `bf16`) every f32 operand is rounded to bf16 first.
 */
export function refGemmInto(c: FTensor, a: Tensor, b: Tensor, spec: Omit<GemmSpec, 'bias'> & { bias?: FTensor | undefined }, bf16 = false): void {
  checkRefGemm(a, b, c, spec);
  const { M, N, K } = spec;
  const rounding = bf16 || a.dtype === 'bf16' || b.dtype === 'bf16';
  const operand = (x: Tensor): Float64Array => valuesOf(rounding && x.dtype === 'f32' ? roundToBf16(x) : x);
  const av = operand(a), bv = operand(b), cd = c.data, bias = spec.bias?.data;
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

type TransOpts = { transA?: boolean; transB?: boolean };

// a (M,K)|(K,M), b (K,N)|(N,K) -> (M,N); f64 operands give f64
function matmul(a: Tensor<'f64'>, b: Tensor<'f64'>, opts?: TransOpts): Tensor<'f64'>;
function matmul(a: Tensor, b: Tensor, opts?: TransOpts): Tensor<'f32'>;
function matmul(a: Tensor, b: Tensor, opts: TransOpts = {}): FTensor {
  const spec = matmulDims(a, b, opts.transA ?? false, opts.transB ?? false);
  const c = Tensor.zeros([spec.M, spec.N], a.dtype === 'f64' ? 'f64' : 'f32');
  refGemmInto(c, a, b, spec);
  return c;
}

/** x (..., K) f64, w (N, K) f64, bias (N) f64? -> the product spec and output shape (..., N). */
function linearDimsF64(x: Tensor, w: Tensor, bias?: Tensor): { spec: GemmSpec; out: Shape } {
  const K = x.shape[x.shape.length - 1] ?? 0;
  const [N = 0, Kw] = w.shape;
  if (x.shape.length === 0 || w.shape.length !== 2 || Kw !== K || w.dtype !== 'f64' || (bias !== undefined && (bias.dtype !== 'f64' || bias.size !== N))) {
    throw new ShapeError(`linear: f64 x ${fmt(x.shape)} needs f64 w (N, K) and bias (N) with K=${K}; got w ${w.dtype} ${fmt(w.shape)}${bias ? `, bias ${bias.dtype} ${fmt(bias.shape)}` : ''}`);
  }
  const rows = x.shape.slice(0, -1).reduce((p, d) => p * d, 1);
  return { spec: { M: rows, N, K, transB: true }, out: [...x.shape.slice(0, -1), N] };
}

// x (..., K), w (N, K), bias (N)? -> (..., N); all f64 gives f64
function linear(x: Tensor<'f64'>, w: Tensor<'f64'>, bias?: Tensor<'f64'>): Tensor<'f64'>;
function linear(x: Tensor<'f32'>, w: Tensor, bias?: Tensor<'f32'>): Tensor<'f32'>;
function linear(x: FTensor, w: Tensor, bias?: FTensor): FTensor {
  if (x.dtype === 'f64') {
    const { spec, out } = linearDimsF64(x, w, bias);
    const y = Tensor.zeros(out, 'f64');
    refGemmInto(y, x, w, { ...spec, bias });
    return y;
  }
  const { spec, out } = linearDims(x, w, bias);
  const y = Tensor.zeros(out, 'f32');
  refGemmInto(y, x, w, { ...spec, bias });  // bf16 w: x rounded to bf16
  return y;
}

/** matmul and linear with their f64 overloads (refGemm's GemmOps type shows f32 only). */
export const refGemmFloat = { matmul, linear };

export const refGemm: GemmOps = {
  matmul,
  linear,

  matmulBf16Into(c, a, b, opts = {}) {
    const spec = matmulDims(a, b, opts.transA ?? false, opts.transB ?? false);
    refGemmInto(c, a, b, { ...spec, accumulate: opts.accumulate ?? false }, true);
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
