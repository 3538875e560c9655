// gemm kernel exports (filled in by the gemm family).
#include "bind.h"

void register_gemm(Napi::Env env, Napi::Object exports) {}
