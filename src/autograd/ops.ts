// Differentiable ops: each runs the backend's forward op and, when a tape is attached
// and an input carries gradient, records the gradient rule next to it (one rule per
// op, tinygrad-style). Model code calls these for inference (no tape: plain forward)
// and training alike.
import type { AttentionRope, Backend, FTensor } from '../backend/backend.js';
import { ShapeError } from '../errors.js';
import { scope } from '../tensor/scope.js';
import { Tensor, type Shape } from '../tensor/tensor.js';
import { Tape, type LeafSink } from './tape.js';
import type { Quant4Weight } from '../quant/types.js';
import { loraLinear, type LowRankAdapter, type LowRankBase } from './lora-linear.js';

/** Mean loss (1), and the float64 sum, number of labelled tokens and argmax hits. */
export interface CrossEntropyResult {
  loss: FTensor;
  sum: number;
  count: number;
  correct: number;
}

export interface OpsOptions {
  tape?: Tape;
  training?: boolean;
  dropoutSeed?: number;
  matmulDtype?: 'f32' | 'bf16';
  /** Recompute cheap activations (RMSNorm and SiLU*up outputs) in backward instead of keeping them. */
  recompute?: boolean;
}

/** Dropout seeds: base seed plus a call counter, so recomputation repeats the masks. */
interface DropoutCounter {
  base: number;
  value: number;
}

/** Logits bytes per cross-entropy chunk: each chunk packs the whole head again, so
 * bigger chunks are faster (256 -> 512 rows: +15% tokens/s on the small preset, whose
 * 32000 x 288 head dominates) and cost this much memory. */
const CE_CHUNK_BYTES = 64 * 2 ** 20;

/** Rows per cross-entropy chunk for a vocabulary of v: a multiple of 64, at least 64. */
export function crossEntropyChunkRows(v: number): number {
  return Math.max(64, Math.floor(CE_CHUNK_BYTES / (4 * Math.max(1, v)) / 64) * 64);
}

export class Ops {
  readonly backend: Backend;
  readonly tape: Tape | undefined;
  /** Dropout is active only in training. */
  readonly training: boolean;
  /** 'bf16': f32 weights are rounded to bf16 for matmuls, and attention's products take bf16 operands (autocast; f32 master weights). */
  readonly matmulDtype: 'f32' | 'bf16';
  readonly recompute: boolean;
  readonly #dropout: DropoutCounter;

  constructor(backend: Backend, opts: OpsOptions = {}, counter?: DropoutCounter) {
    this.backend = backend;
    this.tape = opts.tape;
    this.training = opts.training ?? opts.tape !== undefined;
    this.matmulDtype = opts.matmulDtype ?? 'f32';
    this.recompute = opts.recompute ?? false;
    this.#dropout = counter ?? { base: opts.dropoutSeed ?? 0, value: 0 };
  }

  /** Options for an Ops sharing this one's backend, mode and precision. */
  #with(tape: Tape | undefined): OpsOptions {
    const base = { training: this.training, matmulDtype: this.matmulDtype, recompute: this.recompute };
    return tape === undefined ? base : { tape, ...base };
  }

  #tracks(t: Tensor | undefined): boolean {
    return this.tape?.tracks(t) ?? false;
  }

  // x (..., K), w (N, K) f32|bf16, b (N) -> (..., N)
  linear(x: FTensor, wIn: Tensor, b?: FTensor): FTensor {
    // Autocast of an f32 weight without bias: the products round w (and x, g) to bf16 while
    // packing (bit-identical to casting w first), so no bf16 copy is made or kept.
    if (this.matmulDtype === 'bf16' && wIn.dtype === 'f32' && b === undefined) return this.#linearRounded(x, wIn as Tensor<'f32'>);
    const w = this.matmulDtype === 'bf16' && wIn.dtype === 'f32' ? this.cast(wIn, 'bf16') : wIn;
    const k = w.shape[1] ?? 0;
    const n = w.shape[0] ?? 0;
    const y = this.backend.linear(x as Tensor<'f32'>, w, b as Tensor<'f32'> | undefined);
    this.tape?.record([x, w, b], y, (g, _sink, into) => {
      const m = g.size / n;
      const g2 = g.reshape([m, n]);
      // bf16 w: the products round g (and x) to bf16 while packing, no cast passes.
      const dx = this.#tracks(x) ? this.#inputGrad(g2, w, x, into(0)) : undefined;
      const dw = this.#tracks(w) ? this.#weightGrad(w, g2, x.reshape([m, k]), w.dtype === 'bf16') : undefined;
      let db: FTensor | undefined;
      if (b !== undefined && this.#tracks(b)) {
        db = Tensor.zeros([n], g.dtype);
        this.backend.sumRowsInto(db, g2, false);
      }
      return [dx, dw, db];
    });
    return y;
  }

  // x (..., K), w (N, K) f32 -> (..., N) with x, w (and in backward g) rounded to bf16.
  #linearRounded(x: FTensor, w: Tensor<'f32'>): FTensor {
    const [n = 0, k = 0] = w.shape;
    const m = x.size / k;
    const y = Tensor.empty([...x.shape.slice(0, -1), n], 'f32');
    this.backend.matmulBf16Into(y.reshape([m, n]), x.reshape([m, k]), w, { transB: true });
    this.tape?.record([x, w], y, (g, _sink, into) => {
      const g2 = g.reshape([m, n]);
      const dx = this.#tracks(x) ? this.#inputGrad(g2, w, x, into(0), true) : undefined;
      const dw = this.#tracks(w) ? this.#weightGrad(w, g2, x.reshape([m, k]), true) : undefined;
      return [dx, dw];
    });
    return y;
  }

  // g (M, N), w (N, K) -> dX = g w shaped like x: added to x's gradient so far (`prior`,
  // when several layers read x: the tape's AccumulateInto) or a new tensor. bf16 products
  // when `rounded` or w is bf16 (g rounded while packed).
  #inputGrad(g2: FTensor, w: Tensor, x: FTensor, prior: FTensor | undefined, rounded = false): FTensor {
    if (prior === undefined && !rounded) return this.backend.matmul(g2, w).reshape(x.shape);
    const [m = 0] = g2.shape;
    const k = w.shape[1] ?? 0;
    const dx = prior ?? Tensor.empty(x.shape, 'f32');
    const opts = { accumulate: prior !== undefined };
    if (rounded || w.dtype === 'bf16') this.backend.matmulBf16Into(dx.reshape([m, k]), g2, w, opts);
    else this.backend.matmulInto(dx.reshape([m, k]), g2, w, opts);
    return dx;
  }

  // g (M, N), x (M, K) -> dW (N, K) = g^T x, bf16-rounded products when `rounded`. Added
  // straight into the weight's gradient target when it has one (then returns undefined).
  #weightGrad(w: Tensor, g2: FTensor, x2: FTensor, rounded: boolean): FTensor | undefined {
    const target = this.tape?.targetOf(w);
    const [n = 0, k = 0] = w.shape;
    const dw: FTensor = target ?? Tensor.empty([n, k], rounded ? 'f32' : g2.dtype);
    const opts = { transA: true, accumulate: target !== undefined };
    if (rounded) this.backend.matmulBf16Into(dw, g2, x2, opts);
    else this.backend.matmulInto(dw, g2, x2, opts);
    return target === undefined ? dw : undefined;
  }

  // x (..., K), W 4-bit (N, K), b (N) -> (..., N); gradient for x (and b), never for W
  linear4bit(x: FTensor, q: Quant4Weight, b: FTensor | undefined, computeDtype: 'f32' | 'bf16'): FTensor {
    const [n, k] = q.shape;
    const m = x.size / k;
    // 2-D x: y owns its storage, so the tape frees it once backward has passed (a view would not be).
    const y2 = this.backend.linear4bit(x.reshape([m, k]), q, b, computeDtype);
    const y = x.shape.length === 2 ? y2 : y2.reshape([...x.shape.slice(0, -1), n]);
    this.tape?.record([x, b], y, (g) => {
      const g2 = g.reshape([m, n]);
      const dx = this.#tracks(x) ? this.backend.linear4bitBackwardInput(g2, q, computeDtype).reshape(x.shape) : undefined;
      let db: FTensor | undefined;
      if (b !== undefined && this.#tracks(b)) {
        db = Tensor.zeros([n], g.dtype);
        this.backend.sumRowsInto(db, g2, false);
      }
      return [dx, db];
    });
    return y;
  }

  // ids (N) i32, table (V, C) -> (N, C)
  embedding(ids: Tensor<'i32'>, table: Tensor): FTensor {
    const y = this.backend.embedding(ids, table);
    this.tape?.record([undefined, table], y, (g) => {
      // The backward scatter-adds, so it can add straight into the table's gradient target.
      const target = this.tape?.targetOf(table);
      const dTable = target ?? Tensor.zeros(table.shape, g.dtype);
      this.backend.embeddingBackward(ids, g, dTable);
      return [undefined, target === undefined ? dTable : undefined];
    });
    return y;
  }

  /**
   * With `recompute` on and a tape: frees `t` now and recomputes it with `fn` (given an
   * Ops without tape) when backward needs it (Tape.rematerialize). For outputs every
   * consumer has read in forward and whose recomputation is cheap.
   */
  rematerialize(t: FTensor, fn: (ops: Ops) => FTensor): void {
    const tape = this.tape;
    if (tape === undefined || !this.recompute) return;
    const plain = new Ops(this.backend, this.#with(undefined), this.#dropout);
    tape.rematerialize(t, () => fn(plain));
  }

  /**
   * Frees `t` now when it owns its storage: for a tensor whose consumers have all run and
   * whose backward rules never read it (a projection feeding only rope or add), so it
   * is not kept to the end of the step. The tape still uses the object as a key.
   */
  drop(t: FTensor): void {
    if (t.root === t) t.release();
  }

  // x (N, C), w (C) -> (N, C)
  rmsnorm(x: FTensor, w: FTensor, eps: number): FTensor {
    const y = this.backend.rmsnorm(x as Tensor<'f32'>, w as Tensor<'f32'>, eps);
    this.tape?.record([x, w], y, (g, _sink, into) => {
      const dw = this.#tracks(w) ? Tensor.zeros(w.shape, g.dtype) : undefined;
      // x is the residual stream: its gradient so far (from the residual add) takes dx in place
      const dx = this.backend.rmsnormBackward(x, w, eps, g, dw, this.#tracks(x) ? into(0) : undefined);
      return [dx, dw];
    });
    return y;
  }

  // x (B, T, H, D) -> (B, T, H, D)
  rope(x: FTensor, positions: Int32Array, invFreq: Float32Array): FTensor {
    const y = this.backend.rope(x as Tensor<'f32'>, positions, invFreq);
    this.tape?.record([x], y, (g) => [this.backend.ropeBackward(g, positions, invFreq)]);
    return y;
  }

  // q (B, T, H, D), k, v (B, S', Hkv, D) -> (B, T, H, D); under autocast its products
  // take bf16 operands too (Backend.attention), as the linear layers' do. With `rope` (no
  // KV cache), q and k are the projections before RoPE: attention(rope(q), rope(k), v)
  // without the rotated copies going through memory, forward or backward.
  attention(q: FTensor, k: FTensor, v: FTensor, s: number, scale: number, rope?: AttentionRope): FTensor {
    const bf16 = this.matmulDtype === 'bf16';
    const y = this.backend.attention(q as Tensor<'f32'>, k as Tensor<'f32'>, v as Tensor<'f32'>, s, scale, bf16, rope);
    this.tape?.record([q, k, v], y, (g) => {
      const { dq, dk, dv } = this.backend.attentionBackward(q, k, v, s, scale, g, bf16, rope);
      return [dq, dk, dv];
    });
    return y;
  }

  // gate, up (N, F) -> (N, F)
  siluMul(gate: FTensor, up: FTensor): FTensor {
    const y = this.backend.siluMul(gate as Tensor<'f32'>, up as Tensor<'f32'>);
    this.tape?.record([gate, up], y, (g) => {
      const { dGate, dUp } = this.backend.siluMulBackward(gate, up, g);
      return [dGate, dUp];
    });
    return y;
  }

  add(a: FTensor, b: FTensor): FTensor {
    const y = this.backend.add(a as Tensor<'f32'>, b as Tensor<'f32'>);
    this.tape?.record([a, b], y, (g) => [g, g]);
    return y;
  }

  /** a + s * b. */
  addScaled(a: FTensor, b: FTensor, s: number): FTensor {
    const y = this.backend.addScaled(a, b, s);
    this.tape?.record([a, b], y, (g) => {
      if (!this.#tracks(b)) return [g, undefined];
      const gb = Tensor.zeros(g.shape, g.dtype);
      this.backend.addScaledInPlace(gb, g, s);
      return [g, gb];
    });
    return y;
  }

  /**
   * Fused LoRA: base(x) + scaling * B(A(dropout(x))) as one node, the B product
   * accumulating into the base output (lora-linear.ts). The base weight must be frozen.
   * Draws the same dropout seed the unfused dropout() call would.
   */
  // x (..., K), W (N, K), A (R, K), B (N, R) -> (..., N)
  loraLinear(x: FTensor, base: LowRankBase, adapter: LowRankAdapter): FTensor {
    const seed = this.#dropoutSeed(adapter.dropout);
    return loraLinear({ backend: this.backend, tape: this.tape, matmulDtype: this.matmulDtype, seed }, x, base, adapter);
  }

  /** The next dropout seed, or undefined (no counter step) when dropout is off. */
  #dropoutSeed(p: number): number | undefined {
    if (!this.training || p === 0) return undefined;
    return (this.#dropout.base + this.#dropout.value++) >>> 0;
  }

  /** Inverted dropout (identity when not training or p = 0). */
  dropout(x: FTensor, p: number): FTensor {
    const seed = this.#dropoutSeed(p);
    if (seed === undefined) return x;
    const y = this.backend.dropout(x, p, seed);
    this.tape?.record([x], y, (g) => [this.backend.dropout(g, p, seed)]);
    return y;
  }

  /** dtype conversion; the gradient passes through unchanged (in f32). */
  cast(x: Tensor, dtype: 'f32' | 'bf16'): Tensor {
    const y = this.backend.cast(x, dtype);
    this.tape?.record([x], y, (g) => [g]);
    return y;
  }

  /** A view with another shape; the gradient is reshaped back. */
  reshape(x: FTensor, shape: Shape): FTensor {
    const y = x.reshape(shape);
    this.tape?.record([x], y, (g) => [g.reshape(x.shape)]);
    return y;
  }

  /**
   * Mean cross-entropy of h (N, C) through the output head w (V, C) against labels (N)
   * (-100 = ignored), computed `chunkRows` rows at a time so at most chunkRows x V logits
   * exist at once (crossEntropyChunkRows: about 64 MiB of them). Gradients are computed
   * during the forward pass (the loss is the end of the graph) and scaled by the upstream
   * gradient in backward. `gradScale`: that upstream gradient, when the caller knows it
   * up front (the trainer's token weight): gradients are computed at that scale, and the
   * head's goes straight to its in-place target. -> loss (1)
   */
  crossEntropy(h: FTensor, w: Tensor, labels: Int32Array, gradScale?: number, chunkRows = crossEntropyChunkRows(w.shape[0] ?? 1)): CrossEntropyResult {
    // Autocast rounds an f32 head (and h, the logits) to bf16 while packing: no bf16 copy.
    const bf16 = this.matmulDtype === 'bf16' || w.dtype === 'bf16';
    const [n = 0, c = 0] = h.shape;
    const v = w.shape[0] ?? 0;
    if (labels.length !== n) throw new ShapeError(`crossEntropy: ${labels.length} labels for ${n} rows of h [${h.shape.join(', ')}]`);
    let count = 0;
    for (const l of labels) if (l !== -100) count++;
    const needH = this.#tracks(h);
    const needW = this.#tracks(w);
    // Every row of dh is written by the chunk loop below (which runs only when count > 0).
    const dh = needH ? (count > 0 ? Tensor.empty([n, c], h.dtype) : Tensor.zeros([n, c], h.dtype)) : undefined;
    // The scale as the backward seed will hold it (an f32 tensor for f32 h). With it known
    // up front, the head's gradient goes straight into its in-place target (the flat
    // gradient buffer) instead of a (V, C) copy.
    const scale = h.dtype === 'f32' ? Math.fround(gradScale ?? 1) : gradScale ?? 1;
    const target = gradScale === undefined ? undefined : this.tape?.targetOf(w);
    const dw = needW ? (target ?? Tensor.zeros(w.shape, h.dtype)) : undefined;
    let sum = 0;
    let correct = 0;
    for (let r0 = 0; r0 < n && count > 0; r0 += chunkRows) {
      const r1 = Math.min(n, r0 + chunkRows);
      sum += scope(() => {
        const hc = Tensor.view(h, r0 * c, [r1 - r0, c]);
        let logits: FTensor;
        if (bf16) {
          logits = Tensor.empty([r1 - r0, v], 'f32');
          this.backend.matmulBf16Into(logits, hc, w, { transB: true });
        } else {
          logits = this.backend.linear(hc as Tensor<'f32'>, w);
        }
        const predicted = new Int32Array(r1 - r0);
        const losses = this.backend.crossEntropyInPlace(logits, labels.subarray(r0, r1), scale / count, predicted);
        predicted.forEach((id, i) => (correct += id === labels[r0 + i] ? 1 : 0));
        if (dh !== undefined) {
          const rows = Tensor.view(dh, r0 * c, [r1 - r0, c]);
          if (bf16) this.backend.matmulBf16Into(rows, logits, w);
          else this.backend.matmulInto(rows, logits, w);
        }
        const opts = { transA: true, accumulate: target !== undefined || r0 > 0 };
        if (dw !== undefined && bf16) this.backend.matmulBf16Into(dw, logits, hc, opts);
        else if (dw !== undefined) this.backend.matmulInto(dw, logits, hc, opts);
        let s = 0;
        for (const l of losses) s += l;
        return s;
      });
    }
    const loss = Tensor.from([1], h.dtype, [count > 0 ? sum / count : 0]);
    this.tape?.record([h, w], loss, (g) => {
      const up = g.data[0] ?? 1;
      if (up !== scale) {
        if (target !== undefined) {
          throw new ShapeError(`crossEntropy: told the upstream gradient would be ${scale}, got ${up}`, 'pass the backward seed as gradScale; this is a bug in the caller');
        }
        for (const t of [dh, dw]) if (t !== undefined) this.backend.scaleInPlace(t, up / scale);
      }
      return [dh, target === undefined ? dw : undefined];
    });
    return { loss, sum, count, correct };
  }

  /**
   * Activation checkpointing: runs fn(x) without keeping its activations, and in
   * backward recomputes it under a private tape (same dropout masks) to get dx and the
   * gradients of the parameters inside, which go straight to the leaf sink.
   */
  checkpoint(x: FTensor, fn: (ops: Ops, x: FTensor) => FTensor): FTensor {
    const tape = this.tape;
    if (tape === undefined) return fn(this, x);
    const start = { base: this.#dropout.base, value: this.#dropout.value };
    // Only y survives the forward pass; everything fn allocated is released here.
    const y = scope(() => fn(new Ops(this.backend, this.#with(undefined), this.#dropout), x));
    tape.record([x], y, (g, sink: LeafSink) => {
      const dx = scope(() => {
        const sub = new Tape();
        sub.gradTarget = tape.gradTarget;
        for (const leaf of tape.leaves) sub.watch(leaf);
        sub.watch(x);
        const ops = new Ops(this.backend, this.#with(sub), { ...start });
        let dxAcc: FTensor | undefined;
        sub.backward(this.backend, fn(ops, x), g, (leaf, gl) => {
          // The tape frees gl after this call, so keep a copy (ours: later ones add into it).
          if (leaf !== x) sink(leaf, gl);
          else if (dxAcc === undefined) dxAcc = Tensor.from(gl.shape, gl.dtype, gl.data);
          else this.backend.addScaledInPlace(dxAcc, gl, 1);
        });
        return dxAcc;
      });
      return [dx];
    }, true);
    return y;
  }
}
