// Run-time ISA selection and thread count. The TypeScript loader (src/backend/native/
// addon.ts) reads FTUNE_ISA / FTUNE_THREADS and calls ft_set_isa / ft_set_threads; this
// file only reports what the CPU has and records the choice.
#include "ftune.h"
#include <omp.h>

static bool detect_avx2() {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
static bool detect_avx512() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") && detect_avx2();
}
static bool detect_avx512bf16() { return detect_avx512() && __builtin_cpu_supports("avx512bf16"); }

static ft_isa best_isa() {
  if (detect_avx512()) return FT_ISA_AVX512;
  if (detect_avx2()) return FT_ISA_AVX2;
  return FT_ISA_SCALAR;
}

static ft_isa g_isa = best_isa();

ft_isa ft_active_isa() { return g_isa; }
bool ft_cpu_has_avx2() { return detect_avx2(); }
bool ft_cpu_has_avx512() { return detect_avx512(); }
bool ft_cpu_has_avx512bf16() { return detect_avx512bf16(); }

ft_status ft_set_isa(ft_isa isa) {
  if (isa == FT_ISA_AVX512 && !detect_avx512()) return FT_ERR_ISA;
  if (isa == FT_ISA_AVX2 && !detect_avx2()) return FT_ERR_ISA;
  if (isa < FT_ISA_SCALAR || isa > FT_ISA_AVX512) return FT_ERR_ARG;
  g_isa = isa;
  return FT_OK;
}

int ft_threads() { return omp_get_max_threads(); }
void ft_set_threads(int n) {
  if (n > 0) omp_set_num_threads(n);
}
