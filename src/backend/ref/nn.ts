// Reference Llama forward ops: pure TypeScript, float64 arithmetic, written as the
// obvious specification the native kernels are tested against (STYLE.md rule 5). Float
// inputs may be f32 or f64 (finite-difference gradient checks); outputs take their dtype.
// The shape/dtype checks live in ../nn-checks.ts (re-exported here for the native side).
import { ShapeError } from '../../errors.js';
import { Tensor } from '../../tensor/tensor.js';
import type { FloatDType } from '../../tensor/dtype.js';
import type { AttentionRope, NnOps } from '../backend.js';
import { hasDtype, refNnChecks as checks } from '../nn-checks.js';
import { bf16ToF32, f32ToBf16 } from './gemm.js';

export { hasDtype, nnChecks } from '../nn-checks.js';


const bits = new DataView(new ArrayBuffer(4));
function bf16ToNumber(h: number): number {
  bits.setUint32(0, h << 16);
  return bits.getFloat32(0);
}

// ids (...), table (V, C) -> (..., C)
export function embedding(ids: Tensor<'i32'>, table: Tensor<'f64'>): Tensor<'f64'>;
export function embedding(ids: Tensor<'i32'>, table: Tensor): Tensor<'f32'>;
export function embedding(ids: Tensor<'i32'>, table: Tensor): Tensor<FloatDType> {
  const { n, v, c, shape } = checks.embedding(ids, table);
  const out = Tensor.zeros(shape, table.dtype === 'f64' ? 'f64' : 'f32');
  for (let i = 0; i < n; i++) {
    const id = ids.data[i] ?? -1;
    if (id < 0 || id >= v) throw new ShapeError(`embedding: id ${id} at index ${i} is outside the vocabulary [0, ${v})`, 'check the tokenizer matches the model (vocab_size)');
    for (let j = 0; j < c; j++) {
      const raw = table.data[id * c + j] ?? 0;
      out.data[i * c + j] = hasDtype(table, 'bf16') ? bf16ToNumber(raw) : raw;
    }
  }
  return out;
}

// x (N, C), w (C) -> (N, C)
export function rmsnorm<D extends FloatDType>(x: Tensor<D>, w: Tensor<D>, eps: number): Tensor<D> {
  const { n, c } = checks.rmsnorm(x, w, eps);
  const out = Tensor.zeros(x.shape, x.dtype);
  for (let i = 0; i < n; i++) {
    let ss = 0;
    for (let j = 0; j < c; j++) ss += (x.data[i * c + j] ?? 0) ** 2;
    const r = 1 / Math.sqrt(ss / c + eps);
    for (let j = 0; j < c; j++) out.data[i * c + j] = (w.data[j] ?? 0) * (x.data[i * c + j] ?? 0) * r;
  }
  return out;
}

// x (B, T, H, D) -> (B, T, H, D)
export function rope<D extends FloatDType>(x: Tensor<D>, positions: Int32Array, invFreq: Float32Array): Tensor<D> {
  const { b, t, h, d } = checks.rope(x, positions, invFreq);
  const half = d / 2;
  const out = Tensor.zeros(x.shape, x.dtype);
  for (let r = 0; r < b * t * h; r++) {
    const pos = positions[Math.floor(r / h) % t] ?? 0;
    for (let j = 0; j < half; j++) {
      // HF: freqs = inv_freq.float() @ position_ids.float(), an f32 product.
      const angle = Math.fround(Math.fround(pos) * (invFreq[j] ?? 0));
      const cos = Math.cos(angle), sin = Math.sin(angle);
      const x1 = x.data[r * d + j] ?? 0, x2 = x.data[r * d + j + half] ?? 0;
      out.data[r * d + j] = x1 * cos - x2 * sin;
      out.data[r * d + j + half] = x2 * cos + x1 * sin;
    }
  }
  return out;
}

/**
 * x rounded to bf16 as vcvtneps2bf16 rounds it (the native bf16 attention): nearest even
 * through f32, a subnormal f32 becoming zero.
 */
export function roundBf16Ftz(x: number): number {
  return Math.abs(Math.fround(x)) < 2 ** -126 ? 0 : bf16ToF32(f32ToBf16(x));
}

/** x, or a copy with every value rounded by roundBf16Ftz when `bf16`. */
export function roundedIf<T extends Tensor<FloatDType>>(x: T, bf16: boolean): T {
  if (!bf16) return x;
  const out = Tensor.zeros(x.shape, x.dtype);
  for (let i = 0; i < x.size; i++) out.data[i] = roundBf16Ftz(x.data[i] ?? 0);
  return out as T;
}

// q (B, T, H, D), k, v (B, Smax, Hkv, D) -> (B, T, H, D). bf16: q, k, v and the softmax
// numerators rounded to bf16 (Backend.attention).
// rope: q and k rotated first (the rope op), as Backend.attention specifies.
export function attention<D extends FloatDType>(qPre: Tensor<D>, kPre: Tensor<D>, vIn: Tensor<D>, s: number, scale: number, bf16 = false, ropeOf?: AttentionRope): Tensor<D> {
  checks.attentionRope(qPre, kPre, vIn, s, scale, ropeOf);
  const qIn = ropeOf === undefined ? qPre : rope(qPre, ropeOf.positions, ropeOf.invFreq);
  const kIn = ropeOf === undefined ? kPre : rope(kPre, ropeOf.positions, ropeOf.invFreq);
  const dims = checks.attention(qIn, kIn, vIn, s, scale);
  const { b, t, h, d } = dims;
  const q = roundedIf(qIn, bf16), k = roundedIf(kIn, bf16), v = roundedIf(vIn, bf16);
  const out = Tensor.zeros(q.shape, q.dtype);
  const p = new Float64Array(s);
  const acc = new Float64Array(d);
  for (let r = 0; r < b * t * h; r++) {
    const { n, row, sum } = attentionScores(q, k, dims, s, scale, r, p);
    acc.fill(0);
    for (let si = 0; si < n; si++) {
      const w = bf16 ? roundBf16Ftz(p[si] ?? 0) : (p[si] ?? 0) / sum;
      for (let j = 0; j < d; j++) acc[j] = (acc[j] ?? 0) + w * (v.data[row(si) + j] ?? 0);
    }
    if (bf16) for (let j = 0; j < d; j++) acc[j] = (acc[j] ?? 0) / sum;
    out.data.set(acc, r * d);
  }
  return out;
}

/** The attention dims, as checks.attention returns them. */
export interface AttentionDims { b: number; t: number; h: number; hkv: number; d: number; smax: number }

/**
 * Query row r = (b, t, h) of causal GQA attention over s valid kv rows: query t sits at
 * position s - T + t and sees keys 0 ..= that (n of them) of kv head h / (H / Hkv), whose
 * row si starts at row(si) in k and v. Fills p[0..n) with exp(scale q.k - max) and
 * returns sum, the softmax denominator (shared by attention and its backward).
 */
export function attentionScores(q: Tensor<FloatDType>, k: Tensor<FloatDType>, dims: AttentionDims, s: number, scale: number, r: number,
  p: Float64Array): { n: number; row: (si: number) => number; sum: number } {
  const { t, h, hkv, d, smax } = dims;
  const hi = r % h, ti = Math.floor(r / h) % t, bi = Math.floor(r / (h * t));
  const g = Math.floor(hi / (h / hkv));
  const n = s - t + ti + 1;
  const row = (si: number): number => ((bi * smax + si) * hkv + g) * d;
  let m = -Infinity;
  for (let si = 0; si < n; si++) {
    let dot = 0;
    for (let j = 0; j < d; j++) dot += (q.data[r * d + j] ?? 0) * (k.data[row(si) + j] ?? 0);
    p[si] = dot * scale;
    m = Math.max(m, dot * scale);
  }
  let sum = 0;
  for (let si = 0; si < n; si++) sum += (p[si] = Math.exp((p[si] ?? 0) - m));
  return { n, row, sum };
}

// gate (N, F), up (N, F) -> (N, F)
export function siluMul<D extends FloatDType>(gate: Tensor<D>, up: Tensor<D>): Tensor<D> {
  checks.pair('siluMul', gate, up);
  const out = Tensor.zeros(gate.shape, gate.dtype);
  for (let i = 0; i < gate.size; i++) {
    const g = gate.data[i] ?? 0;
    out.data[i] = (g / (1 + Math.exp(-g))) * (up.data[i] ?? 0);
  }
  return out;
}

// a, b -> a + b (same shape)
export function add<D extends FloatDType>(a: Tensor<D>, b: Tensor<D>): Tensor<D> {
  checks.pair('add', a, b);
  const out = Tensor.zeros(a.shape, a.dtype);
  for (let i = 0; i < a.size; i++) out.data[i] = (a.data[i] ?? 0) + (b.data[i] ?? 0);
  return out;
}

// x (N, V) -> (N, V). A row holding a NaN comes out all NaN.
export function softmax<D extends FloatDType>(x: Tensor<D>, temperature: number): Tensor<D> {
  const { n, v } = checks.rows('softmax', x);
  checks.temperature(temperature);
  const out = Tensor.zeros(x.shape, x.dtype);
  const e = new Float64Array(v);
  for (let i = 0; i < n; i++) {
    const row = x.data.subarray(i * v, (i + 1) * v);
    let m = -Infinity;
    for (let j = 0; j < v; j++) m = Math.max(m, row[j] ?? 0);
    let sum = 0;
    for (let j = 0; j < v; j++) sum += (e[j] = Math.exp(((row[j] ?? 0) - m) / temperature));
    for (let j = 0; j < v; j++) out.data[i * v + j] = (e[j] ?? 0) / sum;
  }
  return out;
}

// x (N, V) -> N ids. First index of the maximum; a NaN counts as larger than any number
// (torch.argmax), so the first NaN wins.
export function argmax(x: Tensor<FloatDType>): Int32Array {
  const { n, v } = checks.argmax(x);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 0; j < v; j++) {
      const a = x.data[i * v + j] ?? 0;
      if (Number.isNaN(a)) {
        best = j;
        break;
      }
      if (a > (x.data[i * v + best] ?? 0)) best = j;
    }
    out[i] = best;
  }
  return out;
}

/** The forward ops with their float-generic types (f32 or f64 in, the same out). */
export const refNnFloat = { embedding, rmsnorm, rope, attention, siluMul, add, softmax, argmax };
export const refNn: NnOps = refNnFloat;
