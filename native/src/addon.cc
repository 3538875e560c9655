// Addon entry point: the explicit list of kernel families exported to JavaScript.
// src/backend/native/addon.ts is the typed description of everything exported here.
#include "bind.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  register_core(env, exports);
  register_gemm(env, exports);
  register_ops(env, exports);
  register_grad(env, exports);
  register_quant(env, exports);
  register_rand(env, exports);
  return exports;
}

NODE_API_MODULE(ftune_native, Init)
