// AVX-512 pieces shared by the f32 tiles (attention_avx512.cc) and the bf16 tiles
// (attention_bf16_avx512.cc): the softmax passes over a tile's f32 score rows, the row
// copy and the lane masks of a 64-wide D chunk. Include only from *_avx512.cc files.
#pragma once
#include "attention.h"
#include "simd_avx512.h"

// Row r of a tile, with rows past nq repeating the last real one.
static inline int64_t row_of(int64_t r, int64_t nq) { return r < nq ? r : nq - 1; }

// x [from, to) = 0
static inline void zero_range(float* x, int64_t from, int64_t to) {
  for (int64_t i = from; i < to; i += 16) _mm512_mask_storeu_ps(x + i, mask16(to - i), _mm512_setzero_ps());
}

// Score rows r < nq of sc (R, ld) -> softmax numerators in place over the row's n + r keys
// (max-subtracted exp, as ops_attention_f32_avx512), zeros from there up to cols; inv[r] =
// 1 / sum in double, rounded to f32. When normalize, the rows are scaled by inv[r] too.
static inline void softmax_rows(float* sc, int64_t ld, int64_t nq, int64_t n, int64_t cols, bool normalize, float* inv) {
  for (int64_t r = 0; r < nq; r++) {
    float* p = sc + r * ld;
    const int64_t nr = n + r;
    inv[r] = (float)(1.0 / exp_sum(p, p, nr, max_of(p, nr), 1.0f));
    if (normalize) scale_inplace(p, nr, inv[r]);
    zero_range(p, nr, cols);
  }
}

// x rows (nq, D) at stride -> dst (nq, D) contiguous. Query rows lie H * D floats apart (a
// power of two at H = 16, D = 64): read in place, the 12 rows of a tile share one L1 set.
static inline void copy_rows(const float* x, int64_t nq, int64_t stride, int64_t D, float* dst) {
  for (int64_t r = 0; r < nq; r++)
    for (int64_t d = 0; d < D; d += 16) {
      const __mmask16 k = mask16(D - d);
      _mm512_mask_storeu_ps(dst + r * D + d, k, _mm512_maskz_loadu_ps(k, x + r * stride + d));
    }
}

// Lane masks of the four vectors of the 64-wide D chunk at c.
static inline void chunk_masks(int64_t D, int64_t c, __mmask16* m) {
  for (int64_t j = 0; j < 4; j++) m[j] = c + 16 * j < D ? mask16(D - c - 16 * j) : (__mmask16)0;
}

// p, dp rows (nq, ld) -> dp[r][s] = p (dp - delta_r) scale for s < n + row_of(r), zeros up to
// cols; delta_r = sum_s p dp accumulated in double, as grad_attention_bwd_f32_avx512.
static inline void softmax_bwd_rows(const float* p, float* dp, int64_t ld, int64_t nq, int64_t n, int64_t cols, float scale) {
  const __m512 vs = _mm512_set1_ps(scale);
  for (int64_t r = 0; r < nq; r++) {
    const float* pr = p + r * ld;
    float* dr = dp + r * ld;
    const int64_t nr = n + r;
    __m512d acc0 = _mm512_setzero_pd(), acc1 = _mm512_setzero_pd();
    for (int64_t s = 0; s < nr; s += 16) {
      const __mmask16 k = mask16(nr - s);
      const __m512 a = _mm512_maskz_loadu_ps(k, pr + s), b = _mm512_maskz_loadu_ps(k, dr + s);
      acc0 = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(a)), _mm512_cvtps_pd(_mm512_castps512_ps256(b)), acc0);
      acc1 = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm512_extractf32x8_ps(a, 1)), _mm512_cvtps_pd(_mm512_extractf32x8_ps(b, 1)), acc1);
    }
    const __m512 delta = _mm512_set1_ps((float)_mm512_reduce_add_pd(_mm512_add_pd(acc0, acc1)));
    for (int64_t s = 0; s < nr; s += 16) {
      const __mmask16 k = mask16(nr - s);
      const __m512 a = _mm512_maskz_loadu_ps(k, pr + s), b = _mm512_maskz_loadu_ps(k, dr + s);
      _mm512_mask_storeu_ps(dr + s, k, _mm512_mul_ps(_mm512_mul_ps(a, _mm512_sub_ps(b, delta)), vs));
    }
    zero_range(dr, nr, cols);
  }
}
