// Shape and dtype checks shared by both backends, so they reject exactly the same inputs
// with the same ShapeError. Built per backend from the float dtypes it takes: the native
// kernels take f32 only; the reference backend also f64 (finite-difference gradient
// checks). All float inputs of one call share a dtype; outputs take it.
import { ShapeError } from '../errors.js';
import type { Tensor, Shape } from '../tensor/tensor.js';
import type { DType, FloatDType } from '../tensor/dtype.js';
import type { AdamwStep, AttentionRope } from './backend.js';

export type Floats = readonly FloatDType[];
export const NATIVE_FLOATS: Floats = ['f32'];
export const REF_FLOATS: Floats = ['f32', 'f64'];

export const fmt = (s: Shape): string => `[${s.join(', ')}]`;

/** Narrows a tensor's dtype (a type guard, so `.data` gets the matching array type). */
export function hasDtype<D extends DType>(t: Tensor, dtype: D): t is Tensor<D> {
  return t.dtype === dtype;
}

function needDtype(op: string, name: string, t: Tensor, dtypes: readonly DType[]): void {
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

export function sameShape(op: string, a: Tensor, b: Tensor): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new ShapeError(`${op}: shapes ${fmt(a.shape)} and ${fmt(b.shape)} differ`);
  }
}

function dims4(t: Tensor): [number, number, number, number] {
  const [a = 0, b = 0, c = 0, d = 0] = t.shape;
  return [a, b, c, d];
}

function finite(op: string, name: string, x: number): void {
  if (!Number.isFinite(x)) throw new ShapeError(`${op}: ${name} ${x} must be a finite number`);
}

/** Forward-op checks for a backend taking `floats`. */
export function makeNnChecks(floats: Floats) {
  /** Every named tensor is one of `floats`, all the same dtype. */
  const sameFloat = (op: string, ...named: [string, Tensor][]): void => {
    for (const [name, t] of named) needDtype(op, name, t, floats);
    const first = named[0];
    const other = named.find(([, t]) => t.dtype !== first?.[1].dtype);
    if (first !== undefined && other !== undefined) {
      throw new ShapeError(`${op}: ${first[0]} is ${first[1].dtype} but ${other[0]} is ${other[1].dtype}; float inputs must share a dtype`);
    }
  };
  const checks = {
    sameFloat,
    // ids (...) i32, table (V, C) f32|bf16 (or f64 on ref) -> out shape (..., C); n = ids.size
    embedding(ids: Tensor, table: Tensor): { n: number; v: number; c: number; shape: number[] } {
      needDtype('embedding', 'ids', ids, ['i32']);
      needDtype('embedding', 'table', table, ['bf16', ...floats]);
      needRank('embedding', 'table', table, 2);
      const [v = 0, c = 0] = table.shape;
      return { n: ids.size, v, c, shape: [...ids.shape, c] };
    },
    // x (..., C), w (C) -> rows n, width c
    rmsnorm(x: Tensor, w: Tensor, eps: number): { n: number; c: number } {
      sameFloat('rmsnorm', ['x', x], ['w', w]);
      const c = lastDim('rmsnorm', 'x', x);
      if (w.shape.length !== 1 || w.shape[0] !== c) throw new ShapeError(`rmsnorm: w has shape ${fmt(w.shape)}, expected [${c}] (the last dim of x ${fmt(x.shape)})`);
      if (!(eps >= 0) || !Number.isFinite(eps)) throw new ShapeError(`rmsnorm: eps ${eps} must be a finite number >= 0`);
      return { n: c === 0 ? 0 : x.size / c, c };
    },
    // x (B, T, H, D), positions (T), invFreq (D/2)
    rope(x: Tensor, positions: Int32Array, invFreq: Float32Array): { b: number; t: number; h: number; d: number } {
      sameFloat('rope', ['x', x]);
      needRank('rope', 'x (B, T, H, D)', x, 4);
      const [b, t, h, d] = dims4(x);
      if (d % 2 !== 0) throw new ShapeError(`rope: head dim D=${d} of x ${fmt(x.shape)} must be even (rotate_half pairs j with j + D/2)`);
      if (positions.length !== t) throw new ShapeError(`rope: ${positions.length} positions for T=${t} tokens of x ${fmt(x.shape)}`);
      if (invFreq.length !== d / 2) throw new ShapeError(`rope: invFreq has ${invFreq.length} entries, expected D/2=${d / 2}`);
      return { b, t, h, d };
    },
    // q (B, T, H, D), k, v (B, Smax, Hkv, D), T <= s <= Smax, H % Hkv == 0
    attention(q: Tensor, k: Tensor, v: Tensor, s: number, scale: number): { b: number; t: number; h: number; hkv: number; d: number; smax: number } {
      sameFloat('attention', ['q', q], ['k', k], ['v', v]);
      for (const [name, x] of [['q', q], ['k', k], ['v', v]] as const) needRank('attention', name, x, 4);
      sameShape('attention (k vs v)', k, v);
      const [b, t, h, d] = dims4(q);
      const [kb, smax, hkv, kd] = dims4(k);
      if (kb !== b || kd !== d) throw new ShapeError(`attention: k ${fmt(k.shape)} does not match q ${fmt(q.shape)} in batch or head dim (q is (B, T, H, D), k (B, Smax, Hkv, D))`);
      if (hkv < 1 || h % hkv !== 0) throw new ShapeError(`attention: H=${h} query heads are not a multiple of Hkv=${hkv} key/value heads`);
      if (!Number.isInteger(s) || s < t || s > smax) throw new ShapeError(`attention: s=${s} valid cache rows must be an integer with T=${t} <= s <= Smax=${smax}`);
      if (!Number.isFinite(scale)) throw new ShapeError(`attention: scale ${scale} must be finite`);
      return { b, t, h, hkv, d, smax };
    },
    // attention's checks, plus a fused rope's: its tables fit, and no cache (s = T = Smax)
    attentionRope(q: Tensor, k: Tensor, v: Tensor, s: number, scale: number, rope: AttentionRope | undefined): { b: number; t: number; h: number; hkv: number; d: number; smax: number } {
      const r = checks.attention(q, k, v, s, scale);
      if (rope === undefined) return r;
      checks.rope(q, rope.positions, rope.invFreq);
      if (s !== r.t || r.smax !== r.t) throw new ShapeError(`attention: rope fused into attention needs s = T = Smax (no KV cache), got s=${s}, T=${r.t}, Smax=${r.smax}`, 'rotate k with rope before writing the cache, and call attention without rope');
      return r;
    },
    // same-shape float pair (element-wise ops)
    pair(op: string, a: Tensor, b: Tensor): void {
      sameFloat(op, ['first input', a], ['second input', b]);
      sameShape(op, a, b);
    },
    // x (..., V) -> rows n, width v
    rows(op: string, x: Tensor): { n: number; v: number } {
      sameFloat(op, ['x', x]);
      const v = lastDim(op, 'x', x);
      return { n: v === 0 ? 0 : x.size / v, v };
    },
    // x (..., V) with V >= 1 -> rows n, width v
    argmax(x: Tensor): { n: number; v: number } {
      const r = checks.rows('argmax', x);
      if (r.v < 1) throw new ShapeError(`argmax: rows of x ${fmt(x.shape)} are empty`);
      return r;
    },
    temperature(t: number): void {
      if (!(t > 0) || !Number.isFinite(t) || !Number.isFinite(1 / Math.fround(t))) {
        throw new ShapeError(`softmax: temperature ${t} must be a finite number > 0`, 'use temperature > 0; for greedy decoding use argmax instead');
      }
    },
  };
  return checks;
}

/** Backward-op checks (GradOps) for a backend taking `floats`. */
export function makeGradChecks(floats: Floats) {
  const nn = makeNnChecks(floats);
  const { sameFloat } = nn;
  return {
    // dst (N), x (..., N) -> rows m, width n
    sumRows(dst: Tensor, x: Tensor): { m: number; n: number } {
      sameFloat('sumRowsInto', ['dst', dst], ['x', x]);
      const n = lastDim('sumRowsInto', 'x', x);
      if (dst.size !== n) throw new ShapeError(`sumRowsInto: dst ${fmt(dst.shape)} must have ${n} elements (the last dim of x ${fmt(x.shape)})`);
      return { m: n === 0 ? 0 : x.size / n, n };
    },
    // ids (N) i32, dOut (N, C), dTable (V, C)
    embedding(ids: Tensor, dOut: Tensor, dTable: Tensor): { n: number; v: number; c: number } {
      needDtype('embeddingBackward', 'ids', ids, ['i32']);
      sameFloat('embeddingBackward', ['dOut', dOut], ['dTable', dTable]);
      needRank('embeddingBackward', 'dTable', dTable, 2);
      const [v = 0, c = 0] = dTable.shape;
      if (dOut.size !== ids.size * c) throw new ShapeError(`embeddingBackward: dOut ${fmt(dOut.shape)} must hold ${ids.size} rows of C=${c} (ids ${fmt(ids.shape)}, dTable ${fmt(dTable.shape)})`);
      return { n: ids.size, v, c };
    },
    // x (..., C), w (C), dOut like x, dw (C) or undefined, dx (x's size) or undefined
    rmsnorm(x: Tensor, w: Tensor, eps: number, dOut: Tensor, dw: Tensor | undefined, dx?: Tensor): { n: number; c: number } {
      const r = nn.rmsnorm(x, w, eps);
      const extra: [string, Tensor][] = [...(dw === undefined ? [] : [['dw', dw] as [string, Tensor]]), ...(dx === undefined ? [] : [['dx', dx] as [string, Tensor]])];
      sameFloat('rmsnormBackward', ['x', x], ['dOut', dOut], ...extra);
      sameShape('rmsnormBackward (x vs dOut)', x, dOut);
      if (dw !== undefined) sameShape('rmsnormBackward (w vs dw)', w, dw);
      if (dx !== undefined && dx.size !== x.size) throw new ShapeError(`rmsnormBackward: dx ${fmt(dx.shape)} to add into must hold x's ${x.size} values (x ${fmt(x.shape)})`);
      return r;
    },
    rope: nn.rope,
    // attention's checks plus dOut shaped like q
    attention(q: Tensor, k: Tensor, v: Tensor, s: number, scale: number, dOut: Tensor, rope?: AttentionRope): ReturnType<typeof nn.attention> {
      const r = nn.attentionRope(q, k, v, s, scale, rope);
      sameFloat('attentionBackward', ['q', q], ['dOut', dOut]);
      sameShape('attentionBackward (q vs dOut)', q, dOut);
      return r;
    },
    siluMul(gate: Tensor, up: Tensor, dOut: Tensor): void {
      nn.pair('siluMulBackward', gate, up);
      nn.pair('siluMulBackward', gate, dOut);
    },
    // logits (..., V), labels (N rows), gradScale finite -> rows n, width v
    crossEntropy(logits: Tensor, labels: Int32Array, gradScale: number, predicted?: Int32Array): { n: number; v: number } {
      const r = nn.rows('crossEntropyInPlace', logits);
      if (labels.length !== r.n) throw new ShapeError(`crossEntropyInPlace: ${labels.length} labels for ${r.n} rows of logits ${fmt(logits.shape)}`);
      if (predicted !== undefined && predicted.length !== r.n) throw new ShapeError(`crossEntropyInPlace: predicted holds ${predicted.length} ids for ${r.n} rows of logits ${fmt(logits.shape)}`);
      finite('crossEntropyInPlace', 'gradScale', gradScale);
      return r;
    },
    dropout(x: Tensor, p: number, seed: number): void {
      sameFloat('dropout', ['x', x]);
      if (!(p >= 0 && p < 1)) throw new ShapeError(`dropout: p=${p} must be in [0, 1)`, 'use a dropout probability such as 0.05 or 0.1');
      if (!Number.isSafeInteger(seed) || seed < 0) throw new ShapeError(`dropout: seed ${seed} must be an integer in [0, 2^53)`);
    },
    addScaled(a: Tensor, b: Tensor, s: number): void {
      nn.pair('addScaled', a, b);
      finite('addScaled', 's', s);
    },
    addScaledInPlace(dst: Tensor, src: Tensor, s: number): void {
      sameFloat('addScaledInPlace', ['dst', dst], ['src', src]);
      if (dst.size !== src.size) throw new ShapeError(`addScaledInPlace: dst ${fmt(dst.shape)} and src ${fmt(src.shape)} differ in element count`);
      finite('addScaledInPlace', 's', s);
    },
    scaleInPlace(x: Tensor, s: number): void {
      sameFloat('scaleInPlace', ['x', x]);
      finite('scaleInPlace', 's', s);
    },
    sumSquares(x: Tensor): void {
      sameFloat('sumSquares', ['x', x]);
    },
    adamw(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, h: AdamwStep): void {
      sameFloat('adamw', ['param', param], ['grad', grad], ['m', m], ['v', v]);
      for (const [name, t] of [['grad', grad], ['m', m], ['v', v]] as const) {
        if (t.size !== param.size) throw new ShapeError(`adamw: ${name} ${fmt(t.shape)} and param ${fmt(param.shape)} differ in element count`);
      }
      const bad = (['lr', 'eps', 'weightDecay', 'gradScale'] as const).find((k) => !Number.isFinite(h[k]));
      if (bad !== undefined) throw new ShapeError(`adamw: ${bad} ${h[bad]} must be a finite number`);
      for (const k of ['beta1', 'beta2'] as const) {
        if (!(h[k] >= 0 && h[k] < 1)) throw new ShapeError(`adamw: ${k} ${h[k]} must be in [0, 1)`);
      }
      if (h.eps < 0) throw new ShapeError(`adamw: eps ${h.eps} must be >= 0`);
      if (!Number.isSafeInteger(h.step) || h.step < 1) throw new ShapeError(`adamw: step ${h.step} must be an integer >= 1 (it is 1-based)`);
    },
  };
}

/** The checks of the native backend (f32 only). */
export const nnChecks = makeNnChecks(NATIVE_FLOATS);
export const gradChecks = makeGradChecks(NATIVE_FLOATS);
/** The checks of the reference backend (f32 or f64). */
export const refNnChecks = makeNnChecks(REF_FLOATS);
export const refGradChecks = makeGradChecks(REF_FLOATS);
