// Llama forward ops exports (typed in src/backend/native/addon-ops.ts). Glue only:
// typed arrays become pointer + element count, numbers become dims; the kernel's status
// comes back as a number.
#include "bind.h"
#include "ops.h"

namespace {

// (ids i32, table f32, out f32, N, V, C) -> status
Napi::Value EmbeddingF32(const Napi::CallbackInfo& info) {
  auto ids = i32_arg(info, 0);
  auto table = f32_arg(info, 1);
  auto out = f32_arg(info, 2);
  return status_value(info, ops_embedding_f32(ids.p, ids.n, table.p, table.n, out.p, out.n, int_arg(info, 3),
                                              int_arg(info, 4), int_arg(info, 5)));
}

// (ids i32, table u16 (bf16 bits), out f32, N, V, C) -> status
Napi::Value EmbeddingBf16(const Napi::CallbackInfo& info) {
  auto ids = i32_arg(info, 0);
  auto table = u16_arg(info, 1);
  auto out = f32_arg(info, 2);
  return status_value(info, ops_embedding_bf16(ids.p, ids.n, table.p, table.n, out.p, out.n, int_arg(info, 3),
                                               int_arg(info, 4), int_arg(info, 5)));
}

// (x, w, out, N, C, eps) -> status
Napi::Value RmsnormF32(const Napi::CallbackInfo& info) {
  auto x = f32_arg(info, 0);
  auto w = f32_arg(info, 1);
  auto out = f32_arg(info, 2);
  return status_value(info, ops_rmsnorm_f32(x.p, x.n, w.p, w.n, out.p, out.n, int_arg(info, 3), int_arg(info, 4),
                                            num_arg(info, 5)));
}

// (x, positions i32, invFreq, out, B, T, H, D) -> status
Napi::Value RopeF32(const Napi::CallbackInfo& info) {
  auto x = f32_arg(info, 0);
  auto pos = i32_arg(info, 1);
  auto inv = f32_arg(info, 2);
  auto out = f32_arg(info, 3);
  return status_value(info, ops_rope_f32(x.p, x.n, pos.p, pos.n, inv.p, inv.n, out.p, out.n, int_arg(info, 4),
                                         int_arg(info, 5), int_arg(info, 6), int_arg(info, 7)));
}

// (q, k, v, out, B, T, H, Hkv, D, Smax, S, scale, bf16, positions | null, invFreq | null) -> status
Napi::Value AttentionF32(const Napi::CallbackInfo& info) {
  auto q = f32_arg(info, 0);
  auto k = f32_arg(info, 1);
  auto v = f32_arg(info, 2);
  auto out = f32_arg(info, 3);
  View<int32_t> pos{nullptr, 0};
  View<float> inv{nullptr, 0};
  if (!info[13].IsNull() && !info[13].IsUndefined()) pos = i32_arg(info, 13);
  if (!info[14].IsNull() && !info[14].IsUndefined()) inv = f32_arg(info, 14);
  return status_value(info, ops_attention_f32(q.p, q.n, k.p, k.n, v.p, v.n, out.p, out.n, int_arg(info, 4),
                                              int_arg(info, 5), int_arg(info, 6), int_arg(info, 7), int_arg(info, 8),
                                              int_arg(info, 9), int_arg(info, 10), num_arg(info, 11),
                                              bool_arg(info, 12), pos.p, pos.n, inv.p, inv.n));
}

// (gate, up, out, n) -> status
Napi::Value SiluMulF32(const Napi::CallbackInfo& info) {
  auto g = f32_arg(info, 0);
  auto u = f32_arg(info, 1);
  auto out = f32_arg(info, 2);
  return status_value(info, ops_silu_mul_f32(g.p, g.n, u.p, u.n, out.p, out.n, int_arg(info, 3)));
}

// (a, b, out, n) -> status
Napi::Value AddF32(const Napi::CallbackInfo& info) {
  auto a = f32_arg(info, 0);
  auto b = f32_arg(info, 1);
  auto out = f32_arg(info, 2);
  return status_value(info, ops_add_f32(a.p, a.n, b.p, b.n, out.p, out.n, int_arg(info, 3)));
}

// (x, out, N, V, temperature) -> status
Napi::Value SoftmaxF32(const Napi::CallbackInfo& info) {
  auto x = f32_arg(info, 0);
  auto out = f32_arg(info, 1);
  return status_value(info, ops_softmax_f32(x.p, x.n, out.p, out.n, int_arg(info, 2), int_arg(info, 3),
                                            num_arg(info, 4)));
}

// (x, out i32, N, V) -> status
Napi::Value ArgmaxF32(const Napi::CallbackInfo& info) {
  auto x = f32_arg(info, 0);
  auto out = i32_arg(info, 1);
  return status_value(info, ops_argmax_f32(x.p, x.n, out.p, out.n, int_arg(info, 2), int_arg(info, 3)));
}

}  // namespace

void register_ops(Napi::Env env, Napi::Object exports) {
  exports.Set("opsEmbeddingF32", Napi::Function::New(env, EmbeddingF32));
  exports.Set("opsEmbeddingBf16", Napi::Function::New(env, EmbeddingBf16));
  exports.Set("opsRmsnormF32", Napi::Function::New(env, RmsnormF32));
  exports.Set("opsRopeF32", Napi::Function::New(env, RopeF32));
  exports.Set("opsAttentionF32", Napi::Function::New(env, AttentionF32));
  exports.Set("opsSiluMulF32", Napi::Function::New(env, SiluMulF32));
  exports.Set("opsAddF32", Napi::Function::New(env, AddF32));
  exports.Set("opsSoftmaxF32", Napi::Function::New(env, SoftmaxF32));
  exports.Set("opsArgmaxF32", Napi::Function::New(env, ArgmaxF32));
}
