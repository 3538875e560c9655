// dtype casts: dispatchers and scalar references. f32 -> bf16 rounds to nearest even
// (ft_f32_to_bf16 in ftune.h, NaN stays a quiet NaN); bf16 -> f32 and f16 -> f32 are exact.
// Every ISA produces the same bits. Large casts split into fixed chunks over threads.
#include "gemm.h"
#include "parallel.h"

namespace {

constexpr int64_t CHUNK = 1 << 16;  // elements per parallel chunk (256 KiB of f32)

ft_status check_n(size_t nx, size_t ny, int64_t n) {
  if (n < 0) return FT_ERR_ARG;
  if (!ft_fits(nx, (size_t)n) || !ft_fits(ny, (size_t)n)) return FT_ERR_SIZE;
  return FT_OK;
}

}  // namespace

// x (n) f32 -> y (n) bf16
void cast_f32_bf16_ref(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = ft_f32_to_bf16(x[i]);
}
// x (n) bf16 -> y (n) f32
void cast_bf16_f32_ref(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = ft_bf16_to_f32(x[i]);
}
// x (n) f16 -> y (n) f32
void cast_f16_f32_ref(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = ft_f16_to_f32(x[i]);
}

ft_status cast_f32_bf16(const float* x, size_t nx, uint16_t* y, size_t ny, int64_t n) {
  ft_status s = check_n(nx, ny, n);
  if (s != FT_OK) return s;
  const ft_isa isa = ft_active_isa();
  ft_parallel_for((n + CHUNK - 1) / CHUNK, n > CHUNK, [&](int64_t c) {
    const int64_t i0 = c * CHUNK, m = n - i0 < CHUNK ? n - i0 : CHUNK;
    if (isa == FT_ISA_AVX512) cast_f32_bf16_avx512(x + i0, y + i0, m);
    else if (isa == FT_ISA_AVX2) cast_f32_bf16_avx2(x + i0, y + i0, m);
    else cast_f32_bf16_ref(x + i0, y + i0, m);
  });
  return FT_OK;
}

namespace {

typedef void (*widen_fn)(const uint16_t* x, float* y, int64_t n);

// Runs a 16-bit -> f32 cast variant in fixed chunks over threads: x (n) -> y (n)
ft_status widen(widen_fn ref, widen_fn avx2, widen_fn avx512, const uint16_t* x, size_t nx, float* y, size_t ny,
                int64_t n) {
  ft_status s = check_n(nx, ny, n);
  if (s != FT_OK) return s;
  const ft_isa isa = ft_active_isa();
  const widen_fn fn = isa == FT_ISA_AVX512 ? avx512 : isa == FT_ISA_AVX2 ? avx2 : ref;
  ft_parallel_for((n + CHUNK - 1) / CHUNK, n > CHUNK, [&](int64_t c) {
    const int64_t i0 = c * CHUNK;
    fn(x + i0, y + i0, n - i0 < CHUNK ? n - i0 : CHUNK);
  });
  return FT_OK;
}

}  // namespace

ft_status cast_bf16_f32(const uint16_t* x, size_t nx, float* y, size_t ny, int64_t n) {
  return widen(cast_bf16_f32_ref, cast_bf16_f32_avx2, cast_bf16_f32_avx512, x, nx, y, ny, n);
}

ft_status cast_f16_f32(const uint16_t* x, size_t nx, float* y, size_t ny, int64_t n) {
  return widen(cast_f16_f32_ref, cast_f16_f32_avx2, cast_f16_f32_avx512, x, nx, y, ny, n);
}
