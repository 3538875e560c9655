// Native backward ops (GradOps of src/backend/backend.ts): shape and dtype checks (the
// ones the reference backend uses, restricted to f32), output allocation, calls into
// native/src/grad_dispatch.cc, and a NativeError for a non-zero status. matmulInto runs
// on the GEMM kernels (gemmInto).
import { ShapeError } from '../../errors.js';
import { Tensor } from '../../tensor/tensor.js';
import type { FTensor, GradOps } from '../backend.js';
import { fmt, gradChecks as checks, hasDtype } from '../nn-checks.js';
import { check, native } from './addon.js';
import { gemmInto, gemmOperand, matmulDims } from './gemm.js';

/** The f32 storage of a float tensor (the checks have already rejected other dtypes). */
function f32(t: FTensor): Float32Array {
  if (!hasDtype(t, 'f32')) throw new ShapeError(`native backward ops take f32 tensors, got ${t.dtype} ${fmt(t.shape)}`, 'use the reference backend for f64');
  return t.data;
}

/** Checks a kernel status; on failure the outputs are released before the NativeError. */
function done(status: number, kernel: string, ...outs: Tensor[]): void {
  if (status !== 0) for (const o of outs) o.release();
  check(status, kernel);
}

export const nativeGrad: GradOps = {
  // c (M,N) [+]= op(a) op(b); a, b f32 or bf16, c f32
  matmulInto(c, a, b, opts = {}) {
    const spec = matmulDims(a, b, opts.transA ?? false, opts.transB ?? false);
    if (!hasDtype(c, 'f32')) throw new ShapeError(`matmulInto: c is ${c.dtype} ${fmt(c.shape)}, the native backend writes f32 only`);
    gemmInto(c, a, b, { ...spec, accumulate: opts.accumulate ?? false });
  },

  // [y (M, N) = x W^T,] y += (scaling * x A^T) B^T through h (M, R) (or the call's own
  // scratch), in one native call
  lowRankInto(y, x, a, b, h, scaling, bf16, base) {
    const { M, K, N: R } = matmulDims(x, a, false, true); // x (M, K), A (R, K)
    const N = b.shape[0] ?? 0;
    const xd = gemmOperand('lowRankInto', 'x', x), ad = gemmOperand('lowRankInto', 'A', a), bd = gemmOperand('lowRankInto', 'B', b);
    const wd = base === undefined ? null : gemmOperand('lowRankInto', 'base', base);
    if (b.shape.length !== 2 || b.shape[1] !== R) throw new ShapeError(`lowRankInto: B ${fmt(b.shape)} must be (N, ${R}) for A ${fmt(a.shape)}`);
    if (!hasDtype(y, 'f32') || y.size !== M * N) throw new ShapeError(`lowRankInto: y ${y.dtype} ${fmt(y.shape)} must be f32 with ${M} x ${N} values (the native backend writes f32 only)`);
    if (h !== undefined && (!hasDtype(h, 'f32') || h.size !== M * R)) throw new ShapeError(`lowRankInto: h ${h.dtype} ${fmt(h.shape)} must be f32 with ${M} x ${R} values`);
    if (base !== undefined && (base.shape.length !== 2 || base.shape[0] !== N || base.shape[1] !== K)) {
      throw new ShapeError(`lowRankInto: base ${fmt(base.shape)} must be (${N}, ${K}) for x ${fmt(x.shape)} and B ${fmt(b.shape)}`);
    }
    if (!Number.isFinite(scaling)) throw new ShapeError(`lowRankInto: scaling ${scaling} is not finite`);
    check(native().gemmLowRank(xd, ad, bd, h === undefined ? null : f32(h), f32(y), M, K, R, N, scaling, bf16, wd), 'gemm_low_rank');
  },

  // x (M, N) -> dst (N) [+]= column sums
  sumRowsInto(dst, x, accumulate) {
    const { m, n } = checks.sumRows(dst, x);
    check(native().gradSumRowsF32(f32(x), f32(dst), m, n, accumulate), 'grad_sum_rows_f32');
  },

  // ids (N), dOut (N, C) -> dTable (V, C) +=
  embeddingBackward(ids, dOut, dTable) {
    const { n, v, c } = checks.embedding(ids, dOut, dTable);
    check(native().gradEmbeddingBwdF32(ids.data, f32(dOut), f32(dTable), n, v, c), 'grad_embedding_bwd_f32');
  },

  // x (N, C), w (C), dOut (N, C) -> dx (N, C) (or into +=); dw (C) +=
  rmsnormBackward(x, w, eps, dOut, dw, into) {
    const { n, c } = checks.rmsnorm(x, w, eps, dOut, dw, into);
    const dx = into ?? Tensor.empty(x.shape, 'f32');
    const st = native().gradRmsnormBwdF32(f32(x), f32(w), f32(dOut), f32(dx), dw === undefined ? null : f32(dw), n, c, eps, into !== undefined);
    done(st, 'grad_rmsnorm_bwd_f32', dx);
    return dx;
  },

  // dOut (B, T, H, D) -> dx (B, T, H, D)
  ropeBackward(dOut, positions, invFreq) {
    const { b, t, h, d } = checks.rope(dOut, positions, invFreq);
    const dx = Tensor.empty(dOut.shape, 'f32');
    done(native().gradRopeBwdF32(f32(dOut), positions, invFreq, dx.data, b, t, h, d), 'grad_rope_bwd_f32', dx);
    return dx;
  },

  // q, dOut (B, T, H, D), k, v (B, Smax, Hkv, D) -> dq like q, dk, dv like k
  attentionBackward(q, k, v, s, scale, dOut, bf16 = false, rope) {
    const { b, t, h, hkv, d, smax } = checks.attention(q, k, v, s, scale, dOut, rope);
    // the kernel writes all of dq and zeroes dk, dv itself (rows past S included)
    const dq = Tensor.empty(q.shape, 'f32'), dk = Tensor.empty(k.shape, 'f32'), dv = Tensor.empty(v.shape, 'f32');
    const st = native().gradAttentionBwdF32(f32(q), f32(k), f32(v), f32(dOut), dq.data, dk.data, dv.data, b, t, h, hkv, d, smax, s, scale, bf16,
      rope?.positions ?? null, rope?.invFreq ?? null);
    done(st, 'grad_attention_bwd_f32', dq, dk, dv);
    return { dq, dk, dv };
  },

  // gate, up, dOut (N, F) -> dGate, dUp (N, F)
  siluMulBackward(gate, up, dOut) {
    checks.siluMul(gate, up, dOut);
    const dGate = Tensor.empty(gate.shape, 'f32'), dUp = Tensor.empty(gate.shape, 'f32');
    const st = native().gradSiluMulBwdF32(f32(gate), f32(up), f32(dOut), dGate.data, dUp.data, gate.size);
    done(st, 'grad_silu_mul_bwd_f32', dGate, dUp);
    return { dGate, dUp };
  },

  // logits (N, V) -> gradient in place; losses (N) f64
  crossEntropyInPlace(logits, labels, gradScale, predicted) {
    const { n, v } = checks.crossEntropy(logits, labels, gradScale, predicted);
    const loss = new Float64Array(n);
    check(native().gradCrossEntropyF32(f32(logits), labels, loss, n, v, gradScale, predicted ?? null), 'grad_cross_entropy_f32');
    return loss;
  },

  // x -> inverted dropout (same shape)
  dropout(x, p, seed) {
    checks.dropout(x, p, seed);
    const out = Tensor.empty(x.shape, 'f32');
    done(native().gradDropoutF32(f32(x), out.data, x.size, p, seed), 'grad_dropout_f32', out);
    return out;
  },

  // a + s b
  addScaled(a, b, s) {
    checks.addScaled(a, b, s);
    const out = Tensor.empty(a.shape, 'f32');
    done(native().gradAddScaledF32(f32(a), f32(b), out.data, a.size, s), 'grad_add_scaled_f32', out);
    return out;
  },

  // dst += s src
  addScaledInPlace(dst, src, s) {
    checks.addScaledInPlace(dst, src, s);
    const d = f32(dst);
    check(native().gradAddScaledF32(d, f32(src), d, dst.size, s), 'grad_add_scaled_f32');
  },

  // x *= s
  scaleInPlace(x, s) {
    checks.scaleInPlace(x, s);
    check(native().gradScaleF32(f32(x), x.size, s), 'grad_scale_f32');
  },

  // sum of x^2 (float64, fixed blocks)
  sumSquares(x) {
    checks.sumSquares(x);
    const out = new Float64Array(1);
    check(native().gradSumSquaresF32(f32(x), x.size, out), 'grad_sum_squares_f32');
    return out[0] ?? NaN;
  },

  // one AdamW step over flat f32 buffers
  adamw(param, grad, m, v, h) {
    checks.adamw(param, grad, m, v, h);
    const st = native().gradAdamwF32(f32(param), f32(grad), f32(m), f32(v), param.size, h.lr, h.beta1, h.beta2, h.eps, h.weightDecay, h.step, h.gradScale);
    check(st, 'grad_adamw_f32');
  },
};
