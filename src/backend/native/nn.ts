// Native Llama forward ops: check shapes and dtypes (the checks the reference backend
// uses too), allocate outputs, call the kernel (native/src/ops_dispatch.cc), and turn a
// non-zero status into a NativeError.
import { ShapeError } from '../../errors.js';
import { Tensor, type Shape } from '../../tensor/tensor.js';
import type { NnOps } from '../backend.js';
import { hasDtype, nnChecks } from '../ref/nn.js';
import { check, native } from './addon.js';

// Every kernel here writes its whole output, so outputs skip zero-filling.
const f32 = (shape: Shape): Tensor<'f32'> => Tensor.empty(shape, 'f32');

/** Checks a kernel status; on failure the output is released before the NativeError. */
function done<T extends { release(): void }>(out: T, status: number, kernel: string): T {
  if (status !== 0) out.release();
  check(status, kernel);
  return out;
}

export const nativeNn: NnOps = {
  // ids (...) i32, table (V, C) f32|bf16 -> (..., C) f32
  embedding(ids, table) {
    const { n, v, c, shape } = nnChecks.embedding(ids, table);
    const out = f32(shape);
    if (hasDtype(table, 'bf16')) {
      return done(out, native().opsEmbeddingBf16(ids.data, table.data, out.data, n, v, c), 'ops_embedding_bf16');
    }
    if (hasDtype(table, 'f32')) {
      return done(out, native().opsEmbeddingF32(ids.data, table.data, out.data, n, v, c), 'ops_embedding_f32');
    }
    out.release();
    throw new ShapeError(`embedding: table is ${table.dtype}, expected f32 or bf16`);
  },

  // x (N, C), w (C) -> (N, C)
  rmsnorm(x, w, eps) {
    const { n, c } = nnChecks.rmsnorm(x, w, eps);
    const out = f32(x.shape);
    return done(out, native().opsRmsnormF32(x.data, w.data, out.data, n, c, eps), 'ops_rmsnorm_f32');
  },

  // x (B, T, H, D), positions (T), invFreq (D/2) -> (B, T, H, D)
  rope(x, positions, invFreq) {
    const { b, t, h, d } = nnChecks.rope(x, positions, invFreq);
    const out = f32(x.shape);
    return done(out, native().opsRopeF32(x.data, positions, invFreq, out.data, b, t, h, d), 'ops_rope_f32');
  },

  // q (B, T, H, D), k, v (B, Smax, Hkv, D) -> (B, T, H, D)
  attention(q, k, v, s, scale, bf16 = false, rope) {
    const { b, t, h, hkv, d, smax } = nnChecks.attentionRope(q, k, v, s, scale, rope);
    const out = f32(q.shape);
    const status = native().opsAttentionF32(q.data, k.data, v.data, out.data, b, t, h, hkv, d, smax, s, scale, bf16,
      rope?.positions ?? null, rope?.invFreq ?? null);
    return done(out, status, 'ops_attention_f32');
  },

  // gate (N, F), up (N, F) -> (N, F)
  siluMul(gate, up) {
    nnChecks.pair('siluMul', gate, up);
    const out = f32(gate.shape);
    return done(out, native().opsSiluMulF32(gate.data, up.data, out.data, gate.size), 'ops_silu_mul_f32');
  },

  // a, b -> a + b (same shape)
  add(a, b) {
    nnChecks.pair('add', a, b);
    const out = f32(a.shape);
    return done(out, native().opsAddF32(a.data, b.data, out.data, a.size), 'ops_add_f32');
  },

  // x (N, V) -> (N, V)
  softmax(x, temperature) {
    const { n, v } = nnChecks.rows('softmax', x);
    nnChecks.temperature(temperature);
    const out = f32(x.shape);
    return done(out, native().opsSoftmaxF32(x.data, out.data, n, v, temperature), 'ops_softmax_f32');
  },

  // x (N, V) -> N ids (first maximum; the first NaN wins)
  argmax(x) {
    const { n, v } = nnChecks.argmax(x);
    const out = new Int32Array(n);
    check(native().opsArgmaxF32(x.data, out, n, v), 'ops_argmax_f32');
    return out;
  },
};
