// AVX2 (+F16C) dtype casts, bit-identical to the scalar references in cast_ref.cc.
#include <immintrin.h>
#include "gemm.h"

namespace {

// 8 f32 -> 8 bf16 in the low 16 bits of each 32-bit lane (see ft_f32_to_bf16)
inline __m256i round8(const float* x) {
  const __m256i u = _mm256_castps_si256(_mm256_loadu_ps(x));
  const __m256i abs = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
  const __m256i nan = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7f800000));  // abs >= 0 as signed
  const __m256i hi = _mm256_srli_epi32(u, 16);
  const __m256i lsb = _mm256_and_si256(hi, _mm256_set1_epi32(1));
  const __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), lsb)), 16);
  const __m256i q = _mm256_or_si256(hi, _mm256_set1_epi32(0x40));
  return _mm256_blendv_epi8(r, q, nan);
}

}  // namespace

// x (n) f32 -> y (n) bf16, round to nearest even; NaN -> quiet NaN
void cast_f32_bf16_avx2(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    // packus works per 128-bit lane: [a0-3 b0-3 a4-7 b4-7]; the permute restores order.
    const __m256i p = _mm256_packus_epi32(round8(x + i), round8(x + i + 8));
    _mm256_storeu_si256((__m256i*)(y + i), _mm256_permute4x64_epi64(p, 0xd8));
  }
  cast_f32_bf16_ref(x + i, y + i, n - i);
}

// x (n) bf16 -> y (n) f32
void cast_bf16_f32_avx2(const uint16_t* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)(x + i)));
    _mm256_storeu_ps(y + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
  }
  cast_bf16_f32_ref(x + i, y + i, n - i);
}

// x (n) f16 -> y (n) f32 (vcvtph2ps)
void cast_f16_f32_avx2(const uint16_t* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(x + i))));
  cast_f16_f32_ref(x + i, y + i, n - i);
}
