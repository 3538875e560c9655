// Reference Llama forward ops: pure TypeScript, float64 arithmetic, written as the
// obvious specification the native kernels are tested against (STYLE.md rule 5). Also
// home of the shape/dtype checks both backends share (nnChecks), so the two backends
// reject exactly the same inputs with the same ShapeError.
import { ShapeError } from '../../errors.js';
import { Tensor, type Shape } from '../../tensor/tensor.js';
import type { DType } from '../../tensor/dtype.js';
import type { NnOps } from '../backend.js';

const fmt = (s: Shape): string => `[${s.join(', ')}]`;

/** Narrows a tensor's dtype (a type guard, so `.data` gets the matching array type). */
export function hasDtype<D extends DType>(t: Tensor, dtype: D): t is Tensor<D> {
  return t.dtype === dtype;
}

function needDtype(op: string, name: string, t: Tensor, ...dtypes: DType[]): void {
  if (!dtypes.includes(t.dtype)) throw new ShapeError(`${op}: ${name} is ${t.dtype}, expected ${dtypes.join(' or ')}`);
}

function needRank(op: string, name: string, t: Tensor, rank: number): void {
  if (t.shape.length !== rank) throw new ShapeError(`${op}: ${name} has shape ${fmt(t.shape)}, expected rank ${rank}`);
}

function lastDim(op: string, name: string, t: Tensor): number {
  const c = t.shape[t.shape.length - 1];
  if (c === undefined) throw new ShapeError(`${op}: ${name} is a scalar (shape []), expected at least one dimension`);
  return c;
}

function sameShape(op: string, a: Tensor, b: Tensor): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new ShapeError(`${op}: shapes ${fmt(a.shape)} and ${fmt(b.shape)} differ`);
  }
}

function dims4(t: Tensor): [number, number, number, number] {
  const [a = 0, b = 0, c = 0, d = 0] = t.shape;
  return [a, b, c, d];
}

/** Validated dims of each op; throws ShapeError naming the op, the argument and the shapes. */
export const nnChecks = {
  // ids (...) i32, table (V, C) f32|bf16 -> out shape (..., C); n = ids.size
  embedding(ids: Tensor, table: Tensor): { n: number; v: number; c: number; shape: number[] } {
    needDtype('embedding', 'ids', ids, 'i32');
    needDtype('embedding', 'table', table, 'f32', 'bf16');
    needRank('embedding', 'table', table, 2);
    const [v = 0, c = 0] = table.shape;
    return { n: ids.size, v, c, shape: [...ids.shape, c] };
  },
  // x (..., C) f32, w (C) f32 -> rows n, width c
  rmsnorm(x: Tensor, w: Tensor, eps: number): { n: number; c: number } {
    needDtype('rmsnorm', 'x', x, 'f32');
    needDtype('rmsnorm', 'w', w, 'f32');
    const c = lastDim('rmsnorm', 'x', x);
    if (w.shape.length !== 1 || w.shape[0] !== c) throw new ShapeError(`rmsnorm: w has shape ${fmt(w.shape)}, expected [${c}] (the last dim of x ${fmt(x.shape)})`);
    if (!(eps >= 0) || !Number.isFinite(eps)) throw new ShapeError(`rmsnorm: eps ${eps} must be a finite number >= 0`);
    return { n: c === 0 ? 0 : x.size / c, c };
  },
  // x (B, T, H, D) f32, positions (T), invFreq (D/2)
  rope(x: Tensor, positions: Int32Array, invFreq: Float32Array): { b: number; t: number; h: number; d: number } {
    needDtype('rope', 'x', x, 'f32');
    needRank('rope', 'x (B, T, H, D)', x, 4);
    const [b, t, h, d] = dims4(x);
    if (d % 2 !== 0) throw new ShapeError(`rope: head dim D=${d} of x ${fmt(x.shape)} must be even (rotate_half pairs j with j + D/2)`);
    if (positions.length !== t) throw new ShapeError(`rope: ${positions.length} positions for T=${t} tokens of x ${fmt(x.shape)}`);
    if (invFreq.length !== d / 2) throw new ShapeError(`rope: invFreq has ${invFreq.length} entries, expected D/2=${d / 2}`);
    return { b, t, h, d };
  },
  // q (B, T, H, D), k, v (B, Smax, Hkv, D), T <= s <= Smax, H % Hkv == 0
  attention(q: Tensor, k: Tensor, v: Tensor, s: number, scale: number): { b: number; t: number; h: number; hkv: number; d: number; smax: number } {
    for (const [name, x] of [['q', q], ['k', k], ['v', v]] as const) {
      needDtype('attention', name, x, 'f32');
      needRank('attention', name, x, 4);
    }
    sameShape('attention (k vs v)', k, v);
    const [b, t, h, d] = dims4(q);
    const [kb, smax, hkv, kd] = dims4(k);
    if (kb !== b || kd !== d) throw new ShapeError(`attention: k ${fmt(k.shape)} does not match q ${fmt(q.shape)} in batch or head dim (q is (B, T, H, D), k (B, Smax, Hkv, D))`);
    if (hkv < 1 || h % hkv !== 0) throw new ShapeError(`attention: H=${h} query heads are not a multiple of Hkv=${hkv} key/value heads`);
    if (!Number.isInteger(s) || s < t || s > smax) throw new ShapeError(`attention: s=${s} valid cache rows must be an integer with T=${t} <= s <= Smax=${smax}`);
    if (!Number.isFinite(scale)) throw new ShapeError(`attention: scale ${scale} must be finite`);
    return { b, t, h, hkv, d, smax };
  },
  // same-shape f32 pair (element-wise ops)
  pair(op: string, a: Tensor, b: Tensor): void {
    needDtype(op, 'first input', a, 'f32');
    needDtype(op, 'second input', b, 'f32');
    sameShape(op, a, b);
  },
  // x (..., V) f32 -> rows n, width v
  rows(op: string, x: Tensor): { n: number; v: number } {
    needDtype(op, 'x', x, 'f32');
    const v = lastDim(op, 'x', x);
    return { n: v === 0 ? 0 : x.size / v, v };
  },
  // x (..., V) f32 with V >= 1 -> rows n, width v
  argmax(x: Tensor): { n: number; v: number } {
    const r = nnChecks.rows('argmax', x);
    if (r.v < 1) throw new ShapeError(`argmax: rows of x ${fmt(x.shape)} are empty`);
    return r;
  },
  temperature(t: number): void {
    if (!(t > 0) || !Number.isFinite(t) || !Number.isFinite(1 / Math.fround(t))) {
      throw new ShapeError(`softmax: temperature ${t} must be a finite number > 0`, 'use temperature > 0; for greedy decoding use argmax instead');
    }
  },
};

const f32 = (shape: Shape): Tensor<'f32'> => Tensor.zeros(shape, 'f32');

const bits = new DataView(new ArrayBuffer(4));
function bf16ToNumber(h: number): number {
  bits.setUint32(0, h << 16);
  return bits.getFloat32(0);
}

// ids (...), table (V, C) -> (..., C)
function embedding(ids: Tensor<'i32'>, table: Tensor): Tensor<'f32'> {
  const { n, v, c, shape } = nnChecks.embedding(ids, table);
  const out = f32(shape);
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
function rmsnorm(x: Tensor<'f32'>, w: Tensor<'f32'>, eps: number): Tensor<'f32'> {
  const { n, c } = nnChecks.rmsnorm(x, w, eps);
  const out = f32(x.shape);
  for (let i = 0; i < n; i++) {
    let ss = 0;
    for (let j = 0; j < c; j++) ss += (x.data[i * c + j] ?? 0) ** 2;
    const r = 1 / Math.sqrt(ss / c + eps);
    for (let j = 0; j < c; j++) out.data[i * c + j] = (w.data[j] ?? 0) * (x.data[i * c + j] ?? 0) * r;
  }
  return out;
}

// x (B, T, H, D) -> (B, T, H, D)
function rope(x: Tensor<'f32'>, positions: Int32Array, invFreq: Float32Array): Tensor<'f32'> {
  const { b, t, h, d } = nnChecks.rope(x, positions, invFreq);
  const half = d / 2;
  const out = f32(x.shape);
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

// q (B, T, H, D), k, v (B, Smax, Hkv, D) -> (B, T, H, D)
function attention(q: Tensor<'f32'>, k: Tensor<'f32'>, v: Tensor<'f32'>, s: number, scale: number): Tensor<'f32'> {
  const { b, t, h, hkv, d, smax } = nnChecks.attention(q, k, v, s, scale);
  const out = f32(q.shape);
  const p = new Float64Array(s);
  const acc = new Float64Array(d);
  for (let r = 0; r < b * t * h; r++) {
    const hi = r % h, ti = Math.floor(r / h) % t, bi = Math.floor(r / (h * t));
    const g = Math.floor(hi / (h / hkv));
    const n = s - t + ti + 1; // query ti sits at position s - t + ti and sees keys 0 ..= that
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
    acc.fill(0);
    for (let si = 0; si < n; si++) {
      for (let j = 0; j < d; j++) acc[j] = (acc[j] ?? 0) + ((p[si] ?? 0) / sum) * (v.data[row(si) + j] ?? 0);
    }
    out.data.set(acc, r * d);
  }
  return out;
}

// gate (N, F), up (N, F) -> (N, F)
function siluMul(gate: Tensor<'f32'>, up: Tensor<'f32'>): Tensor<'f32'> {
  nnChecks.pair('siluMul', gate, up);
  const out = f32(gate.shape);
  for (let i = 0; i < gate.size; i++) {
    const g = gate.data[i] ?? 0;
    out.data[i] = (g / (1 + Math.exp(-g))) * (up.data[i] ?? 0);
  }
  return out;
}

// a, b -> a + b (same shape)
function add(a: Tensor<'f32'>, b: Tensor<'f32'>): Tensor<'f32'> {
  nnChecks.pair('add', a, b);
  const out = f32(a.shape);
  for (let i = 0; i < a.size; i++) out.data[i] = (a.data[i] ?? 0) + (b.data[i] ?? 0);
  return out;
}

// x (N, V) -> (N, V). A row holding a NaN comes out all NaN.
function softmax(x: Tensor<'f32'>, temperature: number): Tensor<'f32'> {
  const { n, v } = nnChecks.rows('softmax', x);
  nnChecks.temperature(temperature);
  const out = f32(x.shape);
  const e = new Float64Array(v);
  for (let i = 0; i < n; i++) {
    const row = x.data.subarray(i * v, (i + 1) * v);
    const m = row.reduce((a, b) => Math.max(a, b), -Infinity);
    let sum = 0;
    for (let j = 0; j < v; j++) sum += (e[j] = Math.exp(((row[j] ?? 0) - m) / temperature));
    for (let j = 0; j < v; j++) out.data[i * v + j] = (e[j] ?? 0) / sum;
  }
  return out;
}

// x (N, V) -> N ids. First index of the maximum; a NaN counts as larger than any number
// (torch.argmax), so the first NaN wins.
function argmax(x: Tensor<'f32'>): Int32Array {
  const { n, v } = nnChecks.argmax(x);
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

export const refNn: NnOps = { embedding, rmsnorm, rope, attention, siluMul, add, softmax, argmax };
