// AVX-512 dtype casts, bit-identical to the scalar references in cast_ref.cc. f32 -> bf16
// uses integer rounding instead of vcvtneps2bf16, which treats subnormal inputs as zero.
// GCC 12 warns about _mm512_undefined_* inside its own shift/convert intrinsics (GCC bug
// 105593, fixed in 13); the warning is about the header, not this code.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#include "gemm.h"

// x (n) f32 -> y (n) bf16, round to nearest even; NaN -> quiet NaN (high half | 0x40)
void cast_f32_bf16_avx512(const float* x, uint16_t* y, int64_t n) {
  const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000);
  const __m512i bias = _mm512_set1_epi32(0x7fff), one = _mm512_set1_epi32(1), quiet = _mm512_set1_epi32(0x40);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i u = _mm512_castps_si512(_mm512_loadu_ps(x + i));
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, abs_mask), inf);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), one);
    const __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(bias, lsb)), 16);
    const __m512i q = _mm512_or_si512(_mm512_srli_epi32(u, 16), quiet);
    _mm256_storeu_si256((__m256i*)(y + i), _mm512_cvtepi32_epi16(_mm512_mask_blend_epi32(nan, r, q)));
  }
  cast_f32_bf16_ref(x + i, y + i, n - i);
}

// x (n) bf16 -> y (n) f32
void cast_bf16_f32_avx512(const uint16_t* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)(x + i)));
    _mm512_storeu_ps(y + i, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
  }
  cast_bf16_f32_ref(x + i, y + i, n - i);
}

// x (n) f16 -> y (n) f32 (vcvtph2ps: exact, NaNs quieted)
void cast_f16_f32_avx512(const uint16_t* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(x + i))));
  cast_f16_f32_ref(x + i, y + i, n - i);
}
