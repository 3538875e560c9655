// gemm kernel exports: dense products and dtype casts (typed in
// src/backend/native/addon-gemm.ts). Arguments are converted only; the kernels check sizes.
#include "bind.h"
#include "gemm.h"
#include "quant.h"

namespace {

// Optional f32 argument: null/undefined -> {nullptr, 0}.
View<float> opt_f32_arg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || info[i].IsNull() || info[i].IsUndefined()) return View<float>{nullptr, 0};
  return f32_arg(info, i);
}

// gemmF32(a, b, c, M, N, K, transA, transB, accumulate, bias?) -> status
Napi::Value GemmF32(const Napi::CallbackInfo& info) {
  View<float> a = f32_arg(info, 0), b = f32_arg(info, 1), c = f32_arg(info, 2), bias = opt_f32_arg(info, 9);
  return status_value(info, gemm_f32(a.p, a.n, b.p, b.n, bias.p, bias.n, c.p, c.n, int_arg(info, 3), int_arg(info, 4),
                                     int_arg(info, 5), bool_arg(info, 6), bool_arg(info, 7), bool_arg(info, 8)));
}

// gemmBf16(a, b, c, M, N, K, transA, transB, accumulate, bias?) -> status
Napi::Value GemmBf16(const Napi::CallbackInfo& info) {
  View<uint16_t> a = u16_arg(info, 0), b = u16_arg(info, 1);
  View<float> c = f32_arg(info, 2), bias = opt_f32_arg(info, 9);
  return status_value(info, gemm_bf16(a.p, a.n, b.p, b.n, bias.p, bias.n, c.p, c.n, int_arg(info, 3), int_arg(info, 4),
                                      int_arg(info, 5), bool_arg(info, 6), bool_arg(info, 7), bool_arg(info, 8)));
}

// An operand that is a Float32Array (f32) or a Uint16Array (bf16 bit patterns).
struct Operand {
  const void* p;
  size_t n;
  bool f32;
};

Operand operand_arg(const Napi::CallbackInfo& info, size_t i) {
  Napi::Value v = info[i];
  if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array) {
    View<float> f = f32_arg(info, i);
    return Operand{f.p, f.n, true};
  }
  View<uint16_t> h = u16_arg(info, i);
  return Operand{h.p, h.n, false};
}

// gemmBf16Mixed(a, b, c, M, N, K, transA, transB, accumulate, bias?) -> status; a, b each
// Float32Array (rounded to bf16 while packing) or Uint16Array (bf16)
Napi::Value GemmBf16Mixed(const Napi::CallbackInfo& info) {
  Operand a = operand_arg(info, 0), b = operand_arg(info, 1);
  View<float> c = f32_arg(info, 2), bias = opt_f32_arg(info, 9);
  return status_value(info, gemm_bf16_mixed(a.p, a.f32, a.n, b.p, b.f32, b.n, bias.p, bias.n, c.p, c.n, int_arg(info, 3),
                                            int_arg(info, 4), int_arg(info, 5), bool_arg(info, 6), bool_arg(info, 7),
                                            bool_arg(info, 8)));
}

// gemmMulti(a, M, K, transA, outs, bf16) -> status; outs an array of [b, c, N, transB,
// accumulate, backward?]: a and each dense b a Float32Array (rounded while packed when
// bf16) or a Uint16Array (bf16); with bf16, b may instead be a 4-bit weight object
// (c = a W^T, or a W with backward)
Napi::Value GemmMulti(const Napi::CallbackInfo& info) {
  Operand a = operand_arg(info, 0);
  Napi::Value list = info[4];
  if (!list.IsArray()) throw Napi::TypeError::New(info.Env(), "argument 4 must be an array of outputs");
  Napi::Array arr = list.As<Napi::Array>();
  const uint32_t n = arr.Length();
  if (n < 1 || n > (uint32_t)GEMM_MULTI_MAX) throw Napi::RangeError::New(info.Env(), "gemmMulti: 1 to 8 outputs");
  gemm_multi_out outs[GEMM_MULTI_MAX];
  q4_weight weights[GEMM_MULTI_MAX];
  for (uint32_t s = 0; s < n; s++) {
    Napi::Value e = arr.Get(s);
    if (!e.IsArray()) throw Napi::TypeError::New(info.Env(), "gemmMulti: each output is [b, c, N, transB, accumulate, backward?]");
    Napi::Array o = e.As<Napi::Array>();
    Napi::Value bv = o.Get(0u), cv = o.Get(1u), nv = o.Get(2u);
    if (!cv.IsTypedArray() || cv.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array || !nv.IsNumber())
      throw Napi::TypeError::New(info.Env(), "gemmMulti: c must be a Float32Array and N a number");
    Napi::Float32Array ct = cv.As<Napi::Float32Array>();
    gemm_multi_out& out = outs[s];
    out = gemm_multi_out{nullptr, false, 0, ct.Data(), ct.ElementLength(), nv.As<Napi::Number>().Int64Value(),
                         o.Get(3u).ToBoolean().Value(), o.Get(4u).ToBoolean().Value()};
    if (bv.IsTypedArray()) {
      Napi::TypedArray bt = bv.As<Napi::TypedArray>();
      out.b_f32 = bt.TypedArrayType() == napi_float32_array;
      if (!out.b_f32 && bt.TypedArrayType() != napi_uint16_array) throw Napi::TypeError::New(info.Env(), "gemmMulti: b must be a Float32Array or Uint16Array");
      out.b = typed_data(bt);
      out.nb = bt.ElementLength();
    } else if (bv.IsObject()) {
      weights[s] = q4_weight_of(bv.As<Napi::Object>());
      out.q4 = &weights[s];
      out.q4_backward = o.Get(5u).ToBoolean().Value();
    } else {
      throw Napi::TypeError::New(info.Env(), "gemmMulti: b must be a typed array or a 4-bit weight object");
    }
  }
  return status_value(info, gemm_multi(a.p, a.f32, a.n, int_arg(info, 1), int_arg(info, 2), bool_arg(info, 3), outs, (int)n,
                                       bool_arg(info, 5)));
}

// gemmLowRank(x, a, b, h, y, M, K, R, N, s, bf16, w?) -> status; x, a, b and the base
// weight w (null/undefined: none) each a Float32Array or a Uint16Array (bf16), h (null: a
// scratch of the call's own) and y Float32Arrays
Napi::Value GemmLowRank(const Napi::CallbackInfo& info) {
  Operand x = operand_arg(info, 0), a = operand_arg(info, 1), b = operand_arg(info, 2);
  View<float> h = opt_f32_arg(info, 3), y = f32_arg(info, 4);
  const bool base = info.Length() > 11 && !info[11].IsNull() && !info[11].IsUndefined();
  const Operand w = base ? operand_arg(info, 11) : Operand{nullptr, 0, false};
  return status_value(info, gemm_low_rank(x.p, x.f32, x.n, a.p, a.f32, a.n, b.p, b.f32, b.n, h.p, h.n, y.p, y.n,
                                          int_arg(info, 5), int_arg(info, 6), int_arg(info, 7), int_arg(info, 8),
                                          num_arg(info, 9), bool_arg(info, 10), w.p, w.f32, w.n));
}

// castF32ToBf16(x, y, n) -> status
Napi::Value CastF32ToBf16(const Napi::CallbackInfo& info) {
  View<float> x = f32_arg(info, 0);
  View<uint16_t> y = u16_arg(info, 1);
  return status_value(info, cast_f32_bf16(x.p, x.n, y.p, y.n, int_arg(info, 2)));
}

// castBf16ToF32(x, y, n) -> status
Napi::Value CastBf16ToF32(const Napi::CallbackInfo& info) {
  View<uint16_t> x = u16_arg(info, 0);
  View<float> y = f32_arg(info, 1);
  return status_value(info, cast_bf16_f32(x.p, x.n, y.p, y.n, int_arg(info, 2)));
}

// castF16ToF32(x, y, n) -> status
Napi::Value CastF16ToF32(const Napi::CallbackInfo& info) {
  View<uint16_t> x = u16_arg(info, 0);
  View<float> y = f32_arg(info, 1);
  return status_value(info, cast_f16_f32(x.p, x.n, y.p, y.n, int_arg(info, 2)));
}

}  // namespace

void register_gemm(Napi::Env env, Napi::Object exports) {
  exports.Set("gemmF32", Napi::Function::New(env, GemmF32));
  exports.Set("gemmBf16", Napi::Function::New(env, GemmBf16));
  exports.Set("gemmBf16Mixed", Napi::Function::New(env, GemmBf16Mixed));
  exports.Set("gemmMulti", Napi::Function::New(env, GemmMulti));
  exports.Set("gemmLowRank", Napi::Function::New(env, GemmLowRank));
  exports.Set("castF32ToBf16", Napi::Function::New(env, CastF32ToBf16));
  exports.Set("castBf16ToF32", Napi::Function::New(env, CastBf16ToF32));
  exports.Set("castF16ToF32", Napi::Function::New(env, CastF16ToF32));
}
