// Helpers shared by the checked entry points (ops_dispatch.cc, grad_dispatch.cc): dims to
// element counts with overflow checks, and the pick of a kernel's variant for the active
// ISA. No ISA flags needed: include from dispatchers, never from *_avx2 / *_avx512 files.
#pragma once
#include "ftune.h"

// Product of n dims as an element count; false when a dim is negative or it overflows.
static inline bool ft_count(const int64_t* dims, int n, size_t* out) {
  size_t c = 1;
  for (int i = 0; i < n; i++) {
    if (dims[i] < 0 || __builtin_mul_overflow(c, (size_t)dims[i], &c)) return false;
  }
  *out = c;
  return true;
}

static inline bool ft_count2(int64_t a, int64_t b, size_t* out) {
  const int64_t d[2] = {a, b};
  return ft_count(d, 2, out);
}

static inline bool ft_count4(int64_t a, int64_t b, int64_t c, int64_t e, size_t* out) {
  const int64_t d[4] = {a, b, c, e};
  return ft_count(d, 4, out);
}

// The variant of kernel `name` for ft_active_isa(): name_avx512, name_avx2 or name_ref
// (one signature for all three, so `const auto fn = FT_PICK_ISA(...)` is that pointer).
#define FT_PICK_ISA(name)                                  \
  (ft_active_isa() == FT_ISA_AVX512 ? name##_avx512        \
   : ft_active_isa() == FT_ISA_AVX2 ? name##_avx2 : name##_ref)
