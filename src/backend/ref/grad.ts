// Reference backward ops (GradOps): pure TypeScript, float64 arithmetic, f32 or f64
// tensors (outputs take the inputs' dtype). The obvious specification the native kernels
// (native/src/grad_*.cc) are tested against, and the analytic side of the
// finite-difference gradient checks (test/backend/gradcheck*.test.ts).
import { ShapeError } from '../../errors.js';
import { Tensor } from '../../tensor/tensor.js';
import type { FTensor, GradOps } from '../backend.js';
import { matmulDims } from '../native/gemm.js';
import { refGradChecks as checks } from '../nn-checks.js';
import { refGemm, refGemmInto } from './gemm.js';
import { argmax, attentionScores, rope, roundBf16Ftz, roundedIf } from './nn.js';

const MASK64 = (1n << 64n) - 1n;

/**
 * splitmix64's finaliser over the counter seed + (i + 1) * golden gamma (Steele, Lea,
 * Flood 2014), as native/src/grad.h grad_splitmix64: a 64-bit hash of (seed, i).
 */
export function splitmix64(seed: bigint, i: bigint): bigint {
  let z = (seed + (i + 1n) * 0x9e3779b97f4a7c15n) & MASK64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

/** The dropout uniform of element i: the top 24 bits of splitmix64(seed, i) / 2^24, in [0, 1). */
export function dropoutUniform(seed: number, i: number): number {
  return Number(splitmix64(BigInt(seed), BigInt(i)) >> 40n) / 2 ** 24;
}

// q, dOut (B, T, H, D), k, v (B, Smax, Hkv, D) -> dq, dk, dv accumulated in float64, one
// query row (b, t, h) at a time: p recomputed, ds = p (dp - sum p dp). bf16: q, k, v,
// dOut, p and ds rounded to bf16 (Backend.attentionBackward).
function attentionGrads(qIn: FTensor, kIn: FTensor, vIn: FTensor, s: number, scale: number, dOutIn: FTensor, bf16: boolean, dq: Float64Array, dk: Float64Array, dv: Float64Array): void {
  const dims = checks.attention(qIn, kIn, vIn, s, scale, dOutIn);
  const { b, t, h, d } = dims;
  const q = roundedIf(qIn, bf16), k = roundedIf(kIn, bf16), v = roundedIf(vIn, bf16), dOut = roundedIf(dOutIn, bf16);
  const round = bf16 ? roundBf16Ftz : (x: number): number => x;
  const p = new Float64Array(s), dp = new Float64Array(s);
  for (let r = 0; r < b * t * h; r++) {
    const { n, row, sum } = attentionScores(q, k, dims, s, scale, r, p);
    let delta = 0;
    for (let si = 0; si < n; si++) {
      p[si] = round((p[si] ?? 0) / sum);
      let dot = 0;
      for (let j = 0; j < d; j++) dot += (dOut.data[r * d + j] ?? 0) * (v.data[row(si) + j] ?? 0);
      dp[si] = dot;
      delta += (p[si] ?? 0) * dot;
    }
    for (let si = 0; si < n; si++) {
      const ps = p[si] ?? 0, a = round(ps * ((dp[si] ?? 0) - delta) * scale);
      for (let j = 0; j < d; j++) {
        dq[r * d + j] = (dq[r * d + j] ?? 0) + a * (k.data[row(si) + j] ?? 0);
        dk[row(si) + j] = (dk[row(si) + j] ?? 0) + a * (q.data[r * d + j] ?? 0);
        dv[row(si) + j] = (dv[row(si) + j] ?? 0) + ps * (dOut.data[r * d + j] ?? 0);
      }
    }
  }
}

/** A tensor shaped like `like` (its dtype) holding `values`. */
function filled(like: FTensor, values: ArrayLike<number>): FTensor {
  const out = Tensor.zeros(like.shape, like.dtype);
  out.data.set(values);
  return out;
}

export const refGrad: GradOps = {
  // c (M,N) [+]= op(a) op(b)
  matmulInto(c, a, b, opts = {}) {
    const spec = matmulDims(a, b, opts.transA ?? false, opts.transB ?? false);
    refGemmInto(c, a, b, { ...spec, accumulate: opts.accumulate ?? false });
  },

  // [y (M, N) = x W^T,] y += (scaling * x A^T) B^T through h (M, R): the ops it stands for
  lowRankInto(y, x, a, b, h, scaling, bf16, base) {
    const product = (c: FTensor, p: Tensor, q: Tensor, accumulate: boolean): void => {
      if (bf16 || p.dtype === 'bf16' || q.dtype === 'bf16') refGemm.matmulBf16Into(c, p, q, { transB: true, accumulate });
      else refGrad.matmulInto(c, p, q, { transB: true, accumulate });
    };
    if (base !== undefined) product(y, x, base, false);
    const hs = h ?? Tensor.empty([x.shape[0] ?? 0, a.shape[0] ?? 0], x.dtype === 'f64' ? 'f64' : 'f32'); // x (M, K), A (R, K)
    product(hs, x, a, false);
    refGrad.scaleInPlace(hs, scaling);
    product(y, hs, b, true);
    if (h === undefined) hs.release();
  },

  // x (M, N) -> dst (N) [+]= column sums
  sumRowsInto(dst, x, accumulate) {
    const { m, n } = checks.sumRows(dst, x);
    for (let j = 0; j < n; j++) {
      let s = accumulate ? (dst.data[j] ?? 0) : 0;
      for (let i = 0; i < m; i++) s += x.data[i * n + j] ?? 0;
      dst.data[j] = s;
    }
  },

  // ids (N), dOut (N, C) -> dTable (V, C) +=
  embeddingBackward(ids, dOut, dTable) {
    const { n, v, c } = checks.embedding(ids, dOut, dTable);
    for (let i = 0; i < n; i++) {
      const id = ids.data[i] ?? -1;
      if (id < 0 || id >= v) throw new ShapeError(`embeddingBackward: id ${id} at index ${i} is outside the vocabulary [0, ${v})`, 'check the tokenizer matches the model (vocab_size)');
      for (let j = 0; j < c; j++) dTable.data[id * c + j] = (dTable.data[id * c + j] ?? 0) + (dOut.data[i * c + j] ?? 0);
    }
  },

  // x (N, C), w (C), dOut (N, C) -> dx (N, C); dw (C) +=. With r = 1 / sqrt(mean(x^2) + eps):
  // dx = r w dy - x r^3 / C sum_k(w_k dy_k x_k); dw += sum_i dy x r.
  rmsnormBackward(x, w, eps, dOut, dw, into) {
    const { n, c } = checks.rmsnorm(x, w, eps, dOut, dw, into);
    const dx = into ?? Tensor.zeros(x.shape, x.dtype);
    const dwAcc = new Float64Array(c);
    for (let i = 0; i < n; i++) {
      let ss = 0, dot = 0;
      for (let j = 0; j < c; j++) {
        const xv = x.data[i * c + j] ?? 0;
        ss += xv * xv;
        dot += (w.data[j] ?? 0) * (dOut.data[i * c + j] ?? 0) * xv;
      }
      const r = 1 / Math.sqrt(ss / c + eps);
      const coef = (r * r * r * dot) / c;
      for (let j = 0; j < c; j++) {
        const xv = x.data[i * c + j] ?? 0, dy = dOut.data[i * c + j] ?? 0;
        const v = r * (w.data[j] ?? 0) * dy - coef * xv;
        dx.data[i * c + j] = into === undefined ? v : (dx.data[i * c + j] ?? 0) + v;
        dwAcc[j] = (dwAcc[j] ?? 0) + dy * xv * r;
      }
    }
    if (dw !== undefined) for (let j = 0; j < c; j++) dw.data[j] = (dw.data[j] ?? 0) + (dwAcc[j] ?? 0);
    return dx;
  },

  // dOut (B, T, H, D) -> dx: each pair rotated by -angle (the transpose of rope)
  ropeBackward(dOut, positions, invFreq) {
    const { b, t, h, d } = checks.rope(dOut, positions, invFreq);
    const half = d / 2;
    const dx = Tensor.zeros(dOut.shape, dOut.dtype);
    for (let r = 0; r < b * t * h; r++) {
      const pos = positions[Math.floor(r / h) % t] ?? 0;
      for (let j = 0; j < half; j++) {
        const angle = Math.fround(Math.fround(pos) * (invFreq[j] ?? 0));
        const cos = Math.cos(angle), sin = Math.sin(angle);
        const y1 = dOut.data[r * d + j] ?? 0, y2 = dOut.data[r * d + j + half] ?? 0;
        dx.data[r * d + j] = y1 * cos + y2 * sin;
        dx.data[r * d + j + half] = y2 * cos - y1 * sin;
      }
    }
    return dx;
  },

  // q (B, T, H, D), k, v (B, S', Hkv, D), dOut (B, T, H, D) -> dq, dk, dv
  // rope: of the rotated q and k (the rope op), then their gradients rotated back
  attentionBackward(q, k, v, s, scale, dOut, bf16 = false, ropeOf) {
    checks.attention(q, k, v, s, scale, dOut, ropeOf);
    const qr = ropeOf === undefined ? q : rope(q, ropeOf.positions, ropeOf.invFreq);
    const kr = ropeOf === undefined ? k : rope(k, ropeOf.positions, ropeOf.invFreq);
    const dq = new Float64Array(q.size), dk = new Float64Array(k.size), dv = new Float64Array(v.size);
    attentionGrads(qr, kr, v, s, scale, dOut, bf16, dq, dk, dv);
    const grads = { dq: filled(q, dq), dk: filled(k, dk), dv: filled(v, dv) };
    if (ropeOf === undefined) return grads;
    const back = (g: FTensor): FTensor => refGrad.ropeBackward(g, ropeOf.positions, ropeOf.invFreq);
    return { dq: back(grads.dq), dk: back(grads.dk), dv: grads.dv };
  },

  // gate, up, dOut (N, F) -> dGate = dy up s (1 + g (1 - s)), dUp = dy g s; s = sigmoid(g)
  siluMulBackward(gate, up, dOut) {
    checks.siluMul(gate, up, dOut);
    const dGate = Tensor.zeros(gate.shape, gate.dtype), dUp = Tensor.zeros(gate.shape, gate.dtype);
    for (let i = 0; i < gate.size; i++) {
      const g = gate.data[i] ?? 0, dy = dOut.data[i] ?? 0;
      const sg = 1 / (1 + Math.exp(-g));
      dUp.data[i] = dy * g * sg;
      dGate.data[i] = dy * (up.data[i] ?? 0) * sg * (1 + g * (1 - sg));
    }
    return { dGate, dUp };
  },

  // logits (N, V) -> gradScale (softmax - onehot) in place; losses (N) = logsumexp - logit[label]
  crossEntropyInPlace(logits, labels, gradScale, predicted) {
    const { n, v } = checks.crossEntropy(logits, labels, gradScale, predicted);
    if (predicted !== undefined) predicted.set(argmax(logits));
    const bad = labels.findIndex((l) => l !== -100 && (l < 0 || l >= v));
    if (bad >= 0) throw new ShapeError(`crossEntropyInPlace: label ${labels[bad]} at row ${bad} is outside [0, ${v}) and not -100 (ignored)`, 'check the labels were built with the model\'s vocab_size');
    const loss = new Float64Array(n);
    const x = logits.data;
    for (let i = 0; i < n; i++) {
      const label = labels[i] ?? -100, o = i * v;
      if (label === -100) {
        x.fill(0, o, o + v);
        continue;
      }
      let m = -Infinity, sum = 0;
      for (let j = 0; j < v; j++) m = Math.max(m, x[o + j] ?? 0);
      for (let j = 0; j < v; j++) sum += Math.exp((x[o + j] ?? 0) - m);
      loss[i] = m + Math.log(sum) - (x[o + label] ?? 0);
      for (let j = 0; j < v; j++) x[o + j] = gradScale * (Math.exp((x[o + j] ?? 0) - m) / sum - (j === label ? 1 : 0));
    }
    return loss;
  },

  // x -> x * keep / (1 - p), keep iff dropoutUniform(seed, i) >= p
  dropout(x, p, seed) {
    checks.dropout(x, p, seed);
    const out = Tensor.zeros(x.shape, x.dtype);
    const s = 1 / (1 - p);
    for (let i = 0; i < x.size; i++) out.data[i] = p === 0 || dropoutUniform(seed, i) >= p ? (x.data[i] ?? 0) * s : 0;
    return out;
  },

  // a + s b
  addScaled(a, b, s) {
    checks.addScaled(a, b, s);
    const out = Tensor.zeros(a.shape, a.dtype);
    for (let i = 0; i < a.size; i++) out.data[i] = (a.data[i] ?? 0) + s * (b.data[i] ?? 0);
    return out;
  },

  // dst += s src
  addScaledInPlace(dst, src, s) {
    checks.addScaledInPlace(dst, src, s);
    for (let i = 0; i < dst.size; i++) dst.data[i] = (dst.data[i] ?? 0) + s * (src.data[i] ?? 0);
  },

  // x *= s
  scaleInPlace(x, s) {
    checks.scaleInPlace(x, s);
    for (let i = 0; i < x.size; i++) x.data[i] = (x.data[i] ?? 0) * s;
  },

  // sum of x^2 in index order
  sumSquares(x) {
    checks.sumSquares(x);
    let s = 0;
    for (let i = 0; i < x.size; i++) s += (x.data[i] ?? 0) ** 2;
    return s;
  },

  // The documented AdamW step (backend.ts) in float64, rounded to the buffers' dtype on store.
  adamw(param, grad, m, v, h) {
    checks.adamw(param, grad, m, v, h);
    const bc1 = 1 - h.beta1 ** h.step, bc2 = 1 - h.beta2 ** h.step;
    for (let i = 0; i < param.size; i++) {
      const g = (grad.data[i] ?? 0) * h.gradScale;
      const mi = h.beta1 * (m.data[i] ?? 0) + (1 - h.beta1) * g;
      const vi = h.beta2 * (v.data[i] ?? 0) + (1 - h.beta2) * g * g;
      const p = (param.data[i] ?? 0) * (1 - h.lr * h.weightDecay);
      param.data[i] = p - (h.lr / bc1) * (mi / (Math.sqrt(vi) / Math.sqrt(bc2) + h.eps));
      m.data[i] = mi;
      v.data[i] = vi;
    }
  },
};
