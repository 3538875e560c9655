// Backward-op exports (typed in src/backend/native/addon-grad.ts). Glue only: typed
// arrays become pointer + element count, numbers become dims; the status comes back as a
// number (sumSquares writes its result into a one-element Float64Array).
#include "bind.h"
#include "grad.h"

namespace {

// (x, dst, M, N, accumulate) -> status
Napi::Value SumRowsF32(const Napi::CallbackInfo& info) {
  auto x = f32_arg(info, 0);
  auto dst = f32_arg(info, 1);
  const bool acc = info[4].ToBoolean().Value();
  return status_value(info, grad_sum_rows_f32(x.p, x.n, dst.p, dst.n, int_arg(info, 2), int_arg(info, 3), acc));
}

// (ids i32, dOut, dTable, N, V, C) -> status
Napi::Value EmbeddingBwdF32(const Napi::CallbackInfo& info) {
  auto ids = i32_arg(info, 0);
  auto dout = f32_arg(info, 1);
  auto dt = f32_arg(info, 2);
  return status_value(info, grad_embedding_bwd_f32(ids.p, ids.n, dout.p, dout.n, dt.p, dt.n, int_arg(info, 3),
                                                   int_arg(info, 4), int_arg(info, 5)));
}

// (x, w, dOut, dx, dw | null, N, C, eps, accumulate) -> status
Napi::Value RmsnormBwdF32(const Napi::CallbackInfo& info) {
  auto x = f32_arg(info, 0);
  auto w = f32_arg(info, 1);
  auto dout = f32_arg(info, 2);
  auto dx = f32_arg(info, 3);
  View<float> dw{nullptr, 0};
  if (!info[4].IsNull() && !info[4].IsUndefined()) dw = f32_arg(info, 4);
  return status_value(info, grad_rmsnorm_bwd_f32(x.p, x.n, w.p, w.n, dout.p, dout.n, dx.p, dx.n, dw.p, dw.n,
                                                 int_arg(info, 5), int_arg(info, 6), num_arg(info, 7), bool_arg(info, 8)));
}

// (dOut, positions i32, invFreq, dx, B, T, H, D) -> status
Napi::Value RopeBwdF32(const Napi::CallbackInfo& info) {
  auto dout = f32_arg(info, 0);
  auto pos = i32_arg(info, 1);
  auto inv = f32_arg(info, 2);
  auto dx = f32_arg(info, 3);
  return status_value(info, grad_rope_bwd_f32(dout.p, dout.n, pos.p, pos.n, inv.p, inv.n, dx.p, dx.n,
                                              int_arg(info, 4), int_arg(info, 5), int_arg(info, 6), int_arg(info, 7)));
}

// (q, k, v, dOut, dq, dk, dv, B, T, H, Hkv, D, Smax, S, scale, bf16, positions | null,
//  invFreq | null) -> status
Napi::Value AttentionBwdF32(const Napi::CallbackInfo& info) {
  auto q = f32_arg(info, 0);
  auto k = f32_arg(info, 1);
  auto v = f32_arg(info, 2);
  auto dout = f32_arg(info, 3);
  auto dq = f32_arg(info, 4);
  auto dk = f32_arg(info, 5);
  auto dv = f32_arg(info, 6);
  View<int32_t> pos{nullptr, 0};
  View<float> inv{nullptr, 0};
  if (!info[16].IsNull() && !info[16].IsUndefined()) pos = i32_arg(info, 16);
  if (!info[17].IsNull() && !info[17].IsUndefined()) inv = f32_arg(info, 17);
  return status_value(info, grad_attention_bwd_f32(q.p, q.n, k.p, k.n, v.p, v.n, dout.p, dout.n, dq.p, dq.n, dk.p,
                                                   dk.n, dv.p, dv.n, int_arg(info, 7), int_arg(info, 8),
                                                   int_arg(info, 9), int_arg(info, 10), int_arg(info, 11),
                                                   int_arg(info, 12), int_arg(info, 13), num_arg(info, 14),
                                                   bool_arg(info, 15), pos.p, pos.n, inv.p, inv.n));
}

// (gate, up, dOut, dGate, dUp, n) -> status
Napi::Value SiluMulBwdF32(const Napi::CallbackInfo& info) {
  auto g = f32_arg(info, 0);
  auto u = f32_arg(info, 1);
  auto dout = f32_arg(info, 2);
  auto dg = f32_arg(info, 3);
  auto du = f32_arg(info, 4);
  return status_value(info, grad_silu_mul_bwd_f32(g.p, g.n, u.p, u.n, dout.p, dout.n, dg.p, dg.n, du.p, du.n,
                                                  int_arg(info, 5)));
}

// (logits, labels i32, loss f64, N, V, gradScale, predicted i32 | null) -> status
Napi::Value CrossEntropyF32(const Napi::CallbackInfo& info) {
  auto x = f32_arg(info, 0);
  auto labels = i32_arg(info, 1);
  auto loss = f64_arg(info, 2);
  const bool want = info.Length() > 6 && info[6].IsTypedArray();
  const View<int32_t> predicted = want ? i32_arg(info, 6) : View<int32_t>{nullptr, 0};
  return status_value(info, grad_cross_entropy_f32(x.p, x.n, labels.p, labels.n, loss.p, loss.n, int_arg(info, 3),
                                                   int_arg(info, 4), num_arg(info, 5), predicted.p, predicted.n));
}

// (x, out, n, p, seed) -> status
Napi::Value DropoutF32(const Napi::CallbackInfo& info) {
  auto x = f32_arg(info, 0);
  auto out = f32_arg(info, 1);
  return status_value(info, grad_dropout_f32(x.p, x.n, out.p, out.n, int_arg(info, 2), num_arg(info, 3),
                                             int_arg(info, 4)));
}

// (a, b, out, n, s) -> status
Napi::Value AddScaledF32(const Napi::CallbackInfo& info) {
  auto a = f32_arg(info, 0);
  auto b = f32_arg(info, 1);
  auto out = f32_arg(info, 2);
  return status_value(info, grad_add_scaled_f32(a.p, a.n, b.p, b.n, out.p, out.n, int_arg(info, 3), num_arg(info, 4)));
}

// (x, n, s) -> status
Napi::Value ScaleF32(const Napi::CallbackInfo& info) {
  auto x = f32_arg(info, 0);
  return status_value(info, grad_scale_f32(x.p, x.n, int_arg(info, 1), num_arg(info, 2)));
}

// (x, n, out f64 (1)) -> status
Napi::Value SumSquaresF32(const Napi::CallbackInfo& info) {
  auto x = f32_arg(info, 0);
  auto out = f64_arg(info, 2);
  if (out.n < 1) return status_value(info, FT_ERR_SIZE);
  return status_value(info, grad_sum_squares_f32(x.p, x.n, int_arg(info, 1), out.p));
}

// (param, grad, m, v, n, lr, beta1, beta2, eps, weightDecay, step, gradScale) -> status
Napi::Value AdamwF32(const Napi::CallbackInfo& info) {
  auto p = f32_arg(info, 0);
  auto g = f32_arg(info, 1);
  auto m = f32_arg(info, 2);
  auto v = f32_arg(info, 3);
  return status_value(info, grad_adamw_f32(p.p, p.n, g.p, g.n, m.p, m.n, v.p, v.n, int_arg(info, 4), num_arg(info, 5),
                                           num_arg(info, 6), num_arg(info, 7), num_arg(info, 8), num_arg(info, 9),
                                           int_arg(info, 10), num_arg(info, 11)));
}

}  // namespace

void register_grad(Napi::Env env, Napi::Object exports) {
  exports.Set("gradSumRowsF32", Napi::Function::New(env, SumRowsF32));
  exports.Set("gradEmbeddingBwdF32", Napi::Function::New(env, EmbeddingBwdF32));
  exports.Set("gradRmsnormBwdF32", Napi::Function::New(env, RmsnormBwdF32));
  exports.Set("gradRopeBwdF32", Napi::Function::New(env, RopeBwdF32));
  exports.Set("gradAttentionBwdF32", Napi::Function::New(env, AttentionBwdF32));
  exports.Set("gradSiluMulBwdF32", Napi::Function::New(env, SiluMulBwdF32));
  exports.Set("gradCrossEntropyF32", Napi::Function::New(env, CrossEntropyF32));
  exports.Set("gradDropoutF32", Napi::Function::New(env, DropoutF32));
  exports.Set("gradAddScaledF32", Napi::Function::New(env, AddScaledF32));
  exports.Set("gradScaleF32", Napi::Function::New(env, ScaleF32));
  exports.Set("gradSumSquaresF32", Napi::Function::New(env, SumSquaresF32));
  exports.Set("gradAdamwF32", Napi::Function::New(env, AdamwF32));
}
