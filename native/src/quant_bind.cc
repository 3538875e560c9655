// quant kernel exports: 4-bit quantization, dequantization and the fused 4-bit linear
// layer (typed in src/backend/native/addon-quant.ts). Arguments are converted only (the
// weight object's fields to a q4_weight); the kernels check sizes.
#include "bind.h"
#include "quant.h"

namespace {

// Named typed-array field of an object; null/undefined -> {nullptr, 0}.
template <typename T, napi_typedarray_type Kind>
View<T> field(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (v.IsNull() || v.IsUndefined()) return View<T>{nullptr, 0};
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != Kind) {
    throw Napi::TypeError::New(o.Env(), std::string("weight field ") + name + " has the wrong type");
  }
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  return View<T>{static_cast<T*>(typed_data(ta)), ta.ElementLength()};
}

double num_field(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("weight field ") + name + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

// An integer field; N-API's Int64Value maps NaN to 0 and clamps out-of-range values (no UB).
int64_t int_field(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("weight field ") + name + " must be a number");
  return v.As<Napi::Number>().Int64Value();
}

q4_weight weight_arg(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsObject()) throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a weight object");
  return q4_weight_of(info[i].As<Napi::Object>());
}

// A Float32Array (f32) or Uint16Array (bf16 patterns) argument.
struct FloatOrBf16 {
  const void* p;
  size_t n;
  bool bf16;
};
FloatOrBf16 float_or_bf16_arg(const Napi::CallbackInfo& info, size_t i) {
  if (info[i].IsTypedArray() && info[i].As<Napi::TypedArray>().TypedArrayType() == napi_uint16_array) {
    View<uint16_t> v = u16_arg(info, i);
    return FloatOrBf16{v.p, v.n, true};
  }
  View<float> v = f32_arg(info, i);
  return FloatOrBf16{v.p, v.n, false};
}

// q4QuantizeF32(w, codes, absmax, n, blocksize, type) -> status
Napi::Value Q4QuantizeF32(const Napi::CallbackInfo& info) {
  View<float> w = f32_arg(info, 0), absmax = f32_arg(info, 2);
  View<uint8_t> codes = u8_arg(info, 1);
  return status_value(info, q4_quantize_f32(w.p, w.n, codes.p, codes.n, absmax.p, absmax.n, int_arg(info, 3), int_arg(info, 4),
                                            (int32_t)int_arg(info, 5)));
}

// q4QuantizeBf16(w, codes, absmax, n, blocksize, type) -> status
Napi::Value Q4QuantizeBf16(const Napi::CallbackInfo& info) {
  View<uint16_t> w = u16_arg(info, 0);
  View<uint8_t> codes = u8_arg(info, 1);
  View<float> absmax = f32_arg(info, 2);
  return status_value(info, q4_quantize_bf16(w.p, w.n, codes.p, codes.n, absmax.p, absmax.n, int_arg(info, 3), int_arg(info, 4),
                                             (int32_t)int_arg(info, 5)));
}

// q8QuantizeF32(x, map, codes, absmax, n, blocksize) -> status
Napi::Value Q8QuantizeF32(const Napi::CallbackInfo& info) {
  View<float> x = f32_arg(info, 0), map = f32_arg(info, 1), absmax = f32_arg(info, 3);
  View<uint8_t> codes = u8_arg(info, 2);
  return status_value(info, q8_quantize_f32(x.p, x.n, map.p, map.n, codes.p, codes.n, absmax.p, absmax.n, int_arg(info, 4), int_arg(info, 5)));
}

// q4Dequantize(weight, out) -> status
Napi::Value Q4Dequantize(const Napi::CallbackInfo& info) {
  q4_weight w = weight_arg(info, 0);
  View<float> out = f32_arg(info, 1);
  return status_value(info, q4_dequantize(w, out.p, out.n));
}

// q4Linear(weight, x, bias|null, y, M) -> status; x f32, or bf16 patterns for bf16 compute
Napi::Value Q4Linear(const Napi::CallbackInfo& info) {
  q4_weight w = weight_arg(info, 0);
  FloatOrBf16 x = float_or_bf16_arg(info, 1);
  View<float> bias = info[2].IsNull() || info[2].IsUndefined() ? View<float>{nullptr, 0} : f32_arg(info, 2);
  View<float> y = f32_arg(info, 3);
  return status_value(info, q4_linear(w, x.p, x.n, x.bf16, bias.p, bias.n, y.p, y.n, int_arg(info, 4)));
}

// q4LinearBackward(weight, dy, dx, M) -> status; dy f32, or bf16 patterns for bf16 compute
Napi::Value Q4LinearBackward(const Napi::CallbackInfo& info) {
  q4_weight w = weight_arg(info, 0);
  FloatOrBf16 dy = float_or_bf16_arg(info, 1);
  View<float> dx = f32_arg(info, 2);
  return status_value(info, q4_linear_bwd(w, dy.p, dy.n, dy.bf16, dx.p, dx.n, int_arg(info, 3)));
}

}  // namespace

// {codes, map, absmax?, nestedCodes?, nestedAbsmax?, nestedMap?, offset, N, K, blocksize, nestedBlocksize}
q4_weight q4_weight_of(const Napi::Object& o) {
  View<uint8_t> codes = field<uint8_t, napi_uint8_array>(o, "codes"), qa = field<uint8_t, napi_uint8_array>(o, "nestedCodes");
  View<float> map = field<float, napi_float32_array>(o, "map"), absmax = field<float, napi_float32_array>(o, "absmax");
  View<float> na = field<float, napi_float32_array>(o, "nestedAbsmax"), nm = field<float, napi_float32_array>(o, "nestedMap");
  return q4_weight{codes.p, codes.n, map.p, map.n, absmax.p, absmax.n, qa.p, qa.n, na.p, na.n, nm.p, nm.n,
                   (float)num_field(o, "offset"), int_field(o, "N"), int_field(o, "K"),
                   int_field(o, "blocksize"), int_field(o, "nestedBlocksize")};
}

void register_quant(Napi::Env env, Napi::Object exports) {
  exports.Set("q4QuantizeF32", Napi::Function::New(env, Q4QuantizeF32));
  exports.Set("q4QuantizeBf16", Napi::Function::New(env, Q4QuantizeBf16));
  exports.Set("q8QuantizeF32", Napi::Function::New(env, Q8QuantizeF32));
  exports.Set("q4Dequantize", Napi::Function::New(env, Q4Dequantize));
  exports.Set("q4Linear", Napi::Function::New(env, Q4Linear));
  exports.Set("q4LinearBackward", Napi::Function::New(env, Q4LinearBackward));
}
