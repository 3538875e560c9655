// The fused LoRA product, one autograd op: y = base(x) + scaling * B(A(dropout(x))) (PEFT
// tuners/lora/layer.py Linear.forward) without the separate (M, N) B-product output and
// sum. The small (M, R) h = A dropout(x) is scaled first, and its B product accumulates
// straight into the base output (GEMM c +=); in backward the low-rank part of dX
// accumulates into the base's dX the same way:
//   u  = scaling * dY B                       (M, R)
//   dX = dY W + u A     (p = 0; with dropout: dY W + dropout'(u A))
//   dA = u^T dropout(x),  dB = dY^T (scaling * h)
// Rounding: scaling moves from the (M, N) product onto the (M, R) factors, so results
// equal the unfused ops' bit for bit when scaling is a power of two. Otherwise f32
// products differ in the last f32 bits (~1e-7 relative), and bf16 products by one bf16
// rounding of the branch (~2e-3 relative): they round scaling * h and dY where the
// unfused ops round h and scaling * dY. The unfused composition of ops (linear, dropout,
// addScaled) is this op's reference; test/autograd/lora-linear.test.ts checks both ways.
import type { Backend, MultiOutput, FTensor } from '../backend/backend.js';
import type { Quant4Weight } from '../quant/types.js';
import { scope } from '../tensor/scope.js';
import { Tensor } from '../tensor/tensor.js';
import type { Tape } from './tape.js';

/** The frozen base of a fused LoRA product: a dense weight, or a 4-bit one (QLoRA). */
export type LowRankBase =
  | { kind: 'dense'; weight: Tensor; bias?: FTensor | undefined } // weight (N, K) f32|bf16|f64
  | { kind: '4bit'; quant: Quant4Weight; bias?: FTensor | undefined; computeDtype: 'f32' | 'bf16' };

/** One adapter: A (R, K) and B (N, R), the master weights (f32, or f64 in gradient checks). */
export interface LowRankAdapter {
  a: Tensor;
  b: Tensor;
  scaling: number;
  /** Dropout probability on A's input; 0 (or not training) = none. */
  dropout: number;
}

/** What the op needs from Ops: backend, tape, autocast dtype and this call's dropout seed. */
export interface LowRankContext {
  backend: Backend;
  tape: Tape | undefined;
  matmulDtype: 'f32' | 'bf16';
  /** The dropout seed of this call, undefined when dropout is off. */
  seed: number | undefined;
}

// x (..., K), base (N, K) -> (..., N); for 2-D x the output owns its storage, so the tape
// frees it once backward has passed it (a reshaped view would live to the step's end)
// (`round`: an f32 weight without bias under autocast, rounded to bf16 while packed).
function baseForward(be: Backend, x: FTensor, base: LowRankBase, w: Tensor | undefined, m: number, round: boolean): FTensor {
  if (base.kind === 'dense' && round) {
    const [n = 0, k = 0] = base.weight.shape;
    const y = Tensor.empty([...x.shape.slice(0, -1), n], 'f32');
    be.matmulBf16Into(y.reshape([m, n]), x.reshape([m, k]), base.weight, { transB: true });
    return y;
  }
  if (base.kind === 'dense') return be.linear(x as Tensor<'f32'>, w ?? base.weight, base.bias as Tensor<'f32'> | undefined);
  const y = be.linear4bit(x.reshape([m, base.quant.shape[1]]), base.quant, base.bias, base.computeDtype);
  return x.shape.length === 2 ? y : y.reshape([...x.shape.slice(0, -1), base.quant.shape[0]]);
}

// dy (M, N) -> dX (M, K) = dY W, a fresh tensor the low-rank part accumulates into
function baseBackwardInput(be: Backend, dy: FTensor, base: LowRankBase, w: Tensor | undefined, round: boolean): FTensor {
  if (base.kind === 'dense' && round) {
    const dx = Tensor.empty([dy.shape[0] ?? 0, base.weight.shape[1] ?? 0], 'f32');
    be.matmulBf16Into(dx, dy, base.weight);
    return dx;
  }
  if (base.kind === 'dense') return be.matmul(dy, w ?? base.weight);
  return be.linear4bitBackwardInput(dy, base.quant, base.computeDtype);
}

// The base as an operand of Backend.matmulMultiInto: under autocast the dense weight (f32
// rounded while packed, or its bf16 copy `w`) or the 4-bit one computing in bf16; in f32,
// a dense f32 weight when x and the adapter are f32 too. Undefined otherwise (f64 checks,
// mixed dtypes, a 4-bit base computing in f32).
function sharedBase(base: LowRankBase, w: Tensor | undefined, bf16: boolean, x: Tensor, ad: LowRankAdapter): { forward: MultiOutput['b']; backward: MultiOutput['b'] } | undefined {
  if (!bf16) {
    const f32 = base.kind === 'dense' && base.weight.dtype === 'f32' && x.dtype === 'f32' && ad.a.dtype === 'f32' && ad.b.dtype === 'f32';
    return f32 ? { forward: base.weight, backward: base.weight } : undefined;
  }
  if (base.kind === 'dense') return { forward: w ?? base.weight, backward: w ?? base.weight };
  if (base.computeDtype !== 'bf16') return undefined;
  return { forward: { quant: base.quant, backward: false }, backward: { quant: base.quant, backward: true } };
}

// c (M, N) [+]= op(a) op(b): a bf16 product (autocast, or a bf16 operand: f32 ones are
// rounded while packed, as matmul does with mixed inputs) or an f32/f64 one
function productInto(be: Backend, bf16: boolean, c: FTensor, a: Tensor, b: Tensor, opts: { transA?: boolean; transB?: boolean; accumulate?: boolean }): void {
  if (bf16 || a.dtype === 'bf16' || b.dtype === 'bf16') be.matmulBf16Into(c, a, b, opts);
  else be.matmulInto(c, a, b, opts);
}

/**
 * y = base(x) + scaling * B(A(dropout(x))), recording one tape node for x, the base bias,
 * A and B (the base weight must be frozen: the caller checks). With autocast bf16, f32
 * weights are rounded to bf16 for the products exactly as `Ops.linear` rounds them.
 */
// x (M, K), W (N, K), A (R, K), B (N, R) -> (M, N)
export function loraLinear(ctx: LowRankContext, x: FTensor, base: LowRankBase, ad: LowRankAdapter): FTensor {
  const be = ctx.backend, tape = ctx.tape, bf16 = ctx.matmulDtype === 'bf16';
  const autocast = (t: Tensor): Tensor => (bf16 && t.dtype === 'f32' ? be.cast(t, 'bf16') : t);
  // Autocast rounds an f32 base weight without bias while packing (no bf16 copy, as Ops.linear).
  const round = bf16 && base.kind === 'dense' && base.weight.dtype === 'f32' && base.bias === undefined;
  const w = base.kind === 'dense' && !round ? autocast(base.weight) : undefined;
  // A and B (f32 masters) are rounded while packed under autocast (productInto): no copies.
  const a = ad.a, b = ad.b;
  const [r = 0, k = 0] = ad.a.shape;
  const m = x.size / k, n = ad.b.shape[0] ?? 0;
  const x2 = x.reshape([m, k]);
  const seed = ctx.seed, p = ad.dropout;
  const xd = seed === undefined ? x2 : be.dropout(x2, p, seed);
  // A base without bias (sharedBase says which) and no dropout shares x's packing with A:
  // one product of x with W and A side by side, the same bits as two (a dense base: inside
  // lowRankInto).
  const wb = sharedBase(base, w, bf16, x, ad);
  const shared = wb !== undefined && base.bias === undefined && seed === undefined;
  // (M, R) = A dropout(x), then times scaling; backward reads it for dB
  const newH = (): FTensor => Tensor.empty([m, r], bf16 ? 'f32' : xd.dtype);
  let hs: FTensor | undefined;
  let y: FTensor;
  if (base.kind === 'dense' && base.bias === undefined && seed === undefined) {
    // base, A and B in one backend call: x [W; A]^T shares x's packing where the products
    // allow it (as matmulMultiInto). Without a tape nothing reads h afterwards, so the
    // backend keeps it in its own scratch (one allocation less per layer and token).
    hs = tape === undefined ? undefined : newH();
    y = Tensor.empty([...x.shape.slice(0, -1), n], 'f32');
    be.lowRankInto(y.reshape([m, n]), x2, a, b, hs, ad.scaling, bf16, w ?? base.weight);
  } else if (shared) {
    const h = (hs = newH());
    y = Tensor.empty([...x.shape.slice(0, -1), n], 'f32');
    be.matmulMultiInto(x2, [{ c: y.reshape([m, n]), b: wb.forward, transB: true }, { c: h, b: a, transB: true }], { bf16 });
    be.scaleInPlace(h, ad.scaling);
    productInto(be, bf16, y, h, b, { transB: true, accumulate: true });
  } else {
    y = baseForward(be, x, base, w, m, round);
    // hs = scaling * A xd, y += B hs: the same three products and scale, one backend call
    // (without a tape, in the backend's scratch)
    hs = tape === undefined ? undefined : newH();
    be.lowRankInto(y, xd, a, b, hs, ad.scaling, bf16);
  }
  const tracks = (t: Tensor | undefined): boolean => tape?.tracks(t) ?? false;
  tape?.record([x, base.bias, ad.a, ad.b], y, (g, _sink, into) => {
    const g2 = g.reshape([m, n]);
    const needU = tracks(x) || tracks(ad.a);
    const u = needU ? Tensor.empty([m, r], bf16 ? 'f32' : g.dtype) : undefined; // (M, R) = dY B, then times scaling
    let dx: FTensor | undefined;
    // x's gradient so far (q, k and v read the same x): dX is added to it in place
    const prior = u !== undefined && tracks(x) && wb !== undefined && base.kind === 'dense' ? into(0) : undefined;
    if (u !== undefined && tracks(x) && wb !== undefined) {
      // dY W and dY B side by side, dY packed once (as in forward)
      dx = prior === undefined ? Tensor.empty([m, k], 'f32') : prior.reshape([m, k]);
      be.matmulMultiInto(g2, [{ c: dx, b: wb.backward, accumulate: prior !== undefined }, { c: u, b }], { bf16 });
    } else if (u !== undefined) {
      productInto(be, bf16, u, g2, b, {});
    }
    if (u !== undefined) be.scaleInPlace(u, ad.scaling);
    if (tracks(x) && u !== undefined) {
      dx ??= baseBackwardInput(be, g2, base, w, round);
      if (seed === undefined) {
        productInto(be, bf16, dx, u, a, { accumulate: true });
      } else {
        const acc = dx;
        scope(() => {
          const ua = Tensor.empty([m, k], bf16 ? 'f32' : u.dtype);
          productInto(be, bf16, ua, u, a, {});
          be.addScaledInPlace(acc, be.dropout(ua, p, seed), 1);
        });
      }
      dx = prior ?? dx.reshape(x.shape);
    }
    let da: FTensor | undefined;
    if (tracks(ad.a) && u !== undefined) {
      da = Tensor.empty([r, k], g.dtype);
      // Without dropout x is read now (not through the forward's view of it), so a
      // rematerialized input (Tape.rematerialize) is seen with its recomputed storage.
      productInto(be, bf16, da, u, seed === undefined ? x.reshape([m, k]) : xd, { transA: true });
    }
    let db: FTensor | undefined;
    if (tracks(ad.b) && hs !== undefined) {
      db = Tensor.empty([n, r], g.dtype);
      productInto(be, bf16, db, g2, hs, { transA: true });
    }
    let dBias: FTensor | undefined;
    if (base.bias !== undefined && tracks(base.bias)) {
      dBias = Tensor.zeros([n], g.dtype);
      be.sumRowsInto(dBias, g2, false);
    }
    u?.release();
    return [dx, dBias, da, db];
  });
  return y;
}
