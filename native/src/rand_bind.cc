// Random-fill exports (typed in src/backend/native/addon-rand.ts). Glue only.
#include "bind.h"
#include "rand.h"

namespace {

// (out f32, n, seed, std) -> status
Napi::Value NormalF32(const Napi::CallbackInfo& info) {
  auto out = f32_arg(info, 0);
  return status_value(info, rand_normal_f32(out.p, out.n, int_arg(info, 1), (uint64_t)int_arg(info, 2), (float)num_arg(info, 3)));
}

}  // namespace

void register_rand(Napi::Env env, Napi::Object exports) {
  exports.Set("randNormalF32", Napi::Function::New(env, NormalF32));
}
