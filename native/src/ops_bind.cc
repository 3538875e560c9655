// ops kernel exports (filled in by the ops family).
#include "bind.h"

void register_ops(Napi::Env env, Napi::Object exports) {}
