// Native GEMM ops (GemmOps of src/backend/backend.ts): shape and dtype checks, output
// allocation, and calls into native/src/gemm_*.cc / cast_*.cc. Products accumulate in
// f32; bf16 operands use vdpbf16ps where the CPU has it (f32 widening elsewhere).
import { ShapeError } from '../../errors.js';
import { Tensor, type Shape } from '../../tensor/tensor.js';
import type { GemmOps } from '../backend.js';
import { hasDtype } from '../nn-checks.js';
import { check, native } from './addon.js';

/** Dims and flags of one product c (M,N) [+]= op(a) op(b) [+ bias]. */
export interface GemmSpec {
  M: number;
  N: number;
  K: number;
  /** a is stored (K,M) instead of (M,K). */
  transA?: boolean;
  /** b is stored (N,K) instead of (K,N). */
  transB?: boolean;
  /** c += instead of c =. */
  accumulate?: boolean;
  /** (N) f32, added to every row. */
  bias?: Tensor<'f32'>;
}

const fmt = (s: Shape): string => `[${s.join(', ')}]`;

/** t's storage as a GEMM operand: f32 or bf16, else a ShapeError naming `op` and `name`. */
export function gemmOperand(op: string, name: string, t: Tensor): Float32Array | Uint16Array {
  const d = t.data;
  if (!(d instanceof Float32Array || d instanceof Uint16Array)) throw new ShapeError(`${op}: ${name} is ${t.dtype} ${fmt(t.shape)}, expected f32 or bf16`);
  return d;
}

/** Throws a ShapeError unless a, b, c, bias hold exactly the elements `spec` needs. */
export function checkGemm(op: string, a: Tensor, b: Tensor, c: Tensor, spec: GemmSpec): void {
  const { M, N, K, bias } = spec;
  for (const [name, d] of [['M', M], ['N', N], ['K', K]] as const) {
    if (!Number.isInteger(d) || d < 0) throw new ShapeError(`${op}: ${name}=${d} is not a non-negative integer`);
  }
  if ((a.dtype !== 'f32' && a.dtype !== 'bf16') || (b.dtype !== 'f32' && b.dtype !== 'bf16')) {
    throw new ShapeError(`${op}: operands must be f32 or bf16, got ${a.dtype} ${fmt(a.shape)} and ${b.dtype} ${fmt(b.shape)}`);
  }
  if (c.dtype !== 'f32') throw new ShapeError(`${op}: output must be f32, got ${c.dtype} ${fmt(c.shape)}`);
  const dims = `M=${M} N=${N} K=${K}${spec.transA ? ' transA' : ''}${spec.transB ? ' transB' : ''}`;
  if (a.size !== M * K || b.size !== K * N || c.size !== M * N) {
    throw new ShapeError(`${op}: a ${fmt(a.shape)}, b ${fmt(b.shape)}, c ${fmt(c.shape)} do not fit ${dims}`);
  }
  if (bias !== undefined && (bias.dtype !== 'f32' || bias.size !== N)) {
    throw new ShapeError(`${op}: bias ${bias.dtype} ${fmt(bias.shape)} must be f32 with ${N} elements (${dims})`);
  }
}

/**
 * c (M,N) [+]= op(a) op(b) [+ bias] into an existing f32 tensor; a (M,K)|(K,M), b (K,N)|(N,K),
 * each f32 or bf16 (any shapes with those element counts). Both f32 is an f32 product;
 * otherwise, or with `bf16`, a bf16 product: every f32 operand is rounded to bf16 inside
 * the product (bit-identical to cast-then-gemm). For backward passes:
 * dW (N,K) += dY^T X is gemmInto(dW, dY, X, { M: N, N: K, K: rows, transA: true, accumulate: true }).
 */
export function gemmInto(c: Tensor<'f32'>, a: Tensor, b: Tensor, spec: GemmSpec, bf16 = false): void {
  checkGemm('gemm', a, b, c, spec);
  const { M, N, K } = spec;
  const tA = spec.transA ?? false, tB = spec.transB ?? false, acc = spec.accumulate ?? false;
  const bias = spec.bias?.data ?? null;
  const ad = a.data, bd = b.data;
  if (!(ad instanceof Float32Array || ad instanceof Uint16Array) || !(bd instanceof Float32Array || bd instanceof Uint16Array)) return;
  const addon = native();
  if (ad instanceof Float32Array && bd instanceof Float32Array && !bf16) {
    check(addon.gemmF32(ad, bd, c.data, M, N, K, tA, tB, acc, bias), 'gemm_f32');
  } else if (ad instanceof Uint16Array && bd instanceof Uint16Array) {
    check(addon.gemmBf16(ad, bd, c.data, M, N, K, tA, tB, acc, bias), 'gemm_bf16');
  } else {
    check(addon.gemmBf16Mixed(ad, bd, c.data, M, N, K, tA, tB, acc, bias), 'gemm_bf16_mixed');
  }
}

/** x bf16|f16 (any shape) -> f32 workspace tensor of the same shape, exact (caller releases it). */
function toF32Workspace(x: Tensor): Tensor<'f32'> {
  const y = Tensor.empty(x.shape, 'f32', 'workspace');
  const xd = x.data;
  if (!(xd instanceof Uint16Array)) throw new ShapeError(`cast: cannot widen ${x.dtype} ${fmt(x.shape)} to f32 this way`);
  const status = x.dtype === 'f16' ? native().castF16ToF32(xd, y.data, x.size) : native().castBf16ToF32(xd, y.data, x.size);
  check(status, x.dtype === 'f16' ? 'cast_f16_f32' : 'cast_bf16_f32');
  return y;
}

/** a (M,K)|(K,M), b (K,N)|(N,K) -> (M,N) f32; shared by matmul of both backends. */
export function matmulDims(a: Tensor, b: Tensor, transA: boolean, transB: boolean): GemmSpec {
  if (a.shape.length !== 2 || b.shape.length !== 2) {
    throw new ShapeError(`matmul: operands must be 2-D, got a ${fmt(a.shape)} and b ${fmt(b.shape)}`);
  }
  const [a0 = 0, a1 = 0] = a.shape, [b0 = 0, b1 = 0] = b.shape;
  const [M, K] = transA ? [a1, a0] : [a0, a1];
  const [Kb, N] = transB ? [b1, b0] : [b0, b1];
  if (K !== Kb) {
    throw new ShapeError(`matmul: inner dims differ: a ${fmt(a.shape)}${transA ? '^T' : ''} (K=${K}) and b ${fmt(b.shape)}${transB ? '^T' : ''} (K=${Kb})`);
  }
  return { M, N, K, transA, transB };
}

/** x (..., K), w (N, K), bias (N)? -> rows, N, K and the output shape (..., N). */
export function linearDims(x: Tensor, w: Tensor, bias?: Tensor): { spec: GemmSpec; out: Shape } {
  const K = x.shape[x.shape.length - 1];
  const [N = 0, Kw] = w.shape;
  if (K === undefined || x.dtype !== 'f32' || w.shape.length !== 2 || Kw !== K || (w.dtype !== 'f32' && w.dtype !== 'bf16')) {
    throw new ShapeError(`linear: x ${x.dtype} ${fmt(x.shape)} must be f32 (..., K) and w (N, K) f32 or bf16 with the same K; got w ${w.dtype} ${fmt(w.shape)}`);
  }
  if (bias !== undefined && (bias.dtype !== 'f32' || bias.shape.length !== 1 || bias.size !== N)) {
    throw new ShapeError(`linear: bias ${bias.dtype} ${fmt(bias.shape)} must be f32 [${N}] for w ${fmt(w.shape)}`);
  }
  const rows = K === 0 ? numelOf(x.shape.slice(0, -1)) : x.size / K;
  return { spec: { M: rows, N, K, transB: true }, out: [...x.shape.slice(0, -1), N] };
}

function numelOf(s: Shape): number {
  return s.reduce((p, d) => p * d, 1);
}

/** Checks a cast target (callers may come from untyped JS). */
export function castTarget(x: Tensor, dtype: string): void {
  if ((dtype !== 'f32' && dtype !== 'bf16') || (x.dtype !== 'f32' && x.dtype !== 'bf16' && x.dtype !== 'f16')) {
    throw new ShapeError(`cast: cannot convert ${x.dtype} ${fmt(x.shape)} to ${dtype}; supported: f32|bf16|f16 -> f32|bf16`);
  }
}

export const nativeGemm: GemmOps = {
  matmul(a, b, opts = {}) {
    const spec = matmulDims(a, b, opts.transA ?? false, opts.transB ?? false);
    const c = Tensor.empty([spec.M, spec.N], 'f32');
    gemmInto(c, a, b, spec);
    return c;
  },

  linear(x, w, bias) {
    const { spec, out } = linearDims(x, w, bias);
    const y = Tensor.empty(out, 'f32');
    if (bias !== undefined) spec.bias = bias;
    gemmInto(y, x, w, spec);  // bf16 w: x is rounded to bf16 while packed
    return y;
  },

  matmulBf16Into(c, a, b, opts = {}) {
    const spec = matmulDims(a, b, opts.transA ?? false, opts.transB ?? false);
    if (!hasDtype(c, 'f32')) throw new ShapeError(`matmulBf16Into: c is ${c.dtype} ${fmt(c.shape)}, expected f32`);
    gemmInto(c, a, b, { ...spec, accumulate: opts.accumulate ?? false }, true);
  },

  cast(x, dtype) {
    castTarget(x, dtype);
    const y = Tensor.empty(x.shape, dtype);
    const yd: Float32Array | Uint16Array = y.data;
    const xd = x.data;
    if (x.dtype === dtype) {
      yd.set(xd);
    } else if (yd instanceof Float32Array && xd instanceof Uint16Array) {
      const st = x.dtype === 'f16' ? native().castF16ToF32(xd, yd, x.size) : native().castBf16ToF32(xd, yd, x.size);
      check(st, x.dtype === 'f16' ? 'cast_f16_f32' : 'cast_bf16_f32');
    } else if (yd instanceof Uint16Array && xd instanceof Float32Array) {
      check(native().castF32ToBf16(xd, yd, x.size), 'cast_f32_bf16');
    } else if (yd instanceof Uint16Array) {
      const wide = toF32Workspace(x);  // f16 -> f32 is exact, so one rounding in all
      try {
        check(native().castF32ToBf16(wide.data, yd, x.size), 'cast_f32_bf16');
      } finally {
        wide.release();
      }
    }
    return y;
  },
};
