// N-API glue helpers. The glue only converts arguments (typed array -> pointer + element
// count, number -> int/float) and returns the kernel's status as a number; it neither
// checks shapes (TypeScript does) nor computes anything (the kernels do).
#pragma once
#include <napi.h>
#include <cstdint>
#include "ftune.h"

template <typename T>
struct View {
  T* p;
  size_t n;  // elements
};

// A typed array's first element. An empty one may have no storage (a null data pointer),
// and the kernels read a null operand as an absent one (no bias, no base weight, no absmax):
// empty arrays get a pointer to a static dummy instead, never read or written (0 elements).
inline void* typed_data(const Napi::TypedArray& ta) {
  alignas(64) static uint8_t empty[64];
  uint8_t* base = static_cast<uint8_t*>(ta.ArrayBuffer().Data());
  return base == nullptr || ta.ElementLength() == 0 ? static_cast<void*>(empty) : base + ta.ByteOffset();
}

// Typed-array argument i as a View of the given element type; a wrong argument type is a
// TypeError (a bug in the TypeScript wrapper, never user input).
template <typename T, napi_typedarray_type Kind>
inline View<T> typed_arg(const Napi::CallbackInfo& info, size_t i) {
  Napi::Value v = info[i];
  if (!v.IsTypedArray()) throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a typed array");
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  if (ta.TypedArrayType() != Kind) throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " has the wrong typed array type");
  return View<T>{static_cast<T*>(typed_data(ta)), ta.ElementLength()};
}

inline View<float> f32_arg(const Napi::CallbackInfo& info, size_t i) { return typed_arg<float, napi_float32_array>(info, i); }
inline View<uint16_t> u16_arg(const Napi::CallbackInfo& info, size_t i) { return typed_arg<uint16_t, napi_uint16_array>(info, i); }
inline View<int32_t> i32_arg(const Napi::CallbackInfo& info, size_t i) { return typed_arg<int32_t, napi_int32_array>(info, i); }
inline View<uint8_t> u8_arg(const Napi::CallbackInfo& info, size_t i) { return typed_arg<uint8_t, napi_uint8_array>(info, i); }
inline View<double> f64_arg(const Napi::CallbackInfo& info, size_t i) { return typed_arg<double, napi_float64_array>(info, i); }

inline int64_t int_arg(const Napi::CallbackInfo& info, size_t i) {
  Napi::Value v = info[i];
  if (!v.IsNumber()) throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a number");
  return v.As<Napi::Number>().Int64Value();
}
inline double num_arg(const Napi::CallbackInfo& info, size_t i) {
  Napi::Value v = info[i];
  if (!v.IsNumber()) throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}
inline bool bool_arg(const Napi::CallbackInfo& info, size_t i) {
  Napi::Value v = info[i];
  if (!v.IsBoolean()) throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

inline Napi::Value status_value(const Napi::CallbackInfo& info, ft_status s) { return Napi::Number::New(info.Env(), s); }

// One registration function per kernel family (explicit registry, called from addon.cc).
void register_core(Napi::Env env, Napi::Object exports);
// A 4-bit weight object ({codes, map, absmax?, nestedCodes?, ...}, typed in
// src/backend/native/addon-quant.ts) as the kernels take it (quant_bind.cc); its arrays
// are borrowed for the duration of the call.
struct q4_weight;
q4_weight q4_weight_of(const Napi::Object& o);

void register_gemm(Napi::Env env, Napi::Object exports);
void register_ops(Napi::Env env, Napi::Object exports);
void register_grad(Napi::Env env, Napi::Object exports);
void register_quant(Napi::Env env, Napi::Object exports);
void register_rand(Napi::Env env, Napi::Object exports);
