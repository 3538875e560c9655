// AVX2 + FMA helpers shared by the *_avx2.cc kernels (ops, grad, gemv): 8-lane tail
// masks, horizontal sums and max in a fixed order, the Cephes-style polynomial exp, and
// the masked row loops (dot, axpy, scale, exp-and-sum) the forward and backward ops both
// use. Include only from *_avx2.cc files (they are compiled with -mavx2 -mfma). Each
// includer compiles its own copy (static inline), under its own pragmas: grad_avx2.cc
// includes this after its fp-contract pragma, as the copies it replaces were.
#pragma once
#include <immintrin.h>
#include <cmath>
#include <cstdint>

// Lane mask for the first min(rem, 8) lanes.
static inline __m256i mask8(int64_t rem) {
  const int32_t r = rem >= 8 ? 8 : (int32_t)rem;
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// (a0+a4) + (a1+a5) ... in a fixed order -> the sum of the 8 lanes.
static inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

static inline double hsum_pd(__m256d v) {
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
  s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
  return _mm_cvtsd_f64(s);
}

static inline float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Max of x (n), n >= 1.
static inline float max_of(const float* x, int64_t n) {
  const __m256 ninf = _mm256_set1_ps(-INFINITY);
  __m256 m = ninf;
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i k = mask8(n - i);
    m = _mm256_max_ps(m, _mm256_blendv_ps(ninf, _mm256_maskload_ps(x + i, k), _mm256_castsi256_ps(k)));
  }
  return hmax(m);
}

// exp(x) for 8 lanes: x = n ln2 + r, |r| <= ln2/2, exp(r) by the Cephes expf
// polynomial, 2^n built in the exponent field (so x is clamped to [ln FLT_MIN, 88.02]
// and results for x < ln FLT_MIN flush to 0). NaN stays NaN.
static inline __m256 exp256(__m256 x0) {
  const __m256 lo = _mm256_set1_ps(-87.33654f);
  const __m256 x = _mm256_min_ps(_mm256_set1_ps(88.02f), _mm256_max_ps(lo, x0));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  const __m256 y = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(p, r), r, r), _mm256_set1_ps(1.0f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  const __m256 under = _mm256_cmp_ps(x0, lo, _CMP_LT_OQ);
  return _mm256_andnot_ps(under, _mm256_mul_ps(y, _mm256_castsi256_ps(e)));
}

// 8 floats widened to two 4-double halves and added to acc0, acc1 (squared when sq).
static inline void add_pd(__m256 e, bool sq, __m256d* acc0, __m256d* acc1) {
  const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(e));
  const __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1));
  *acc0 = sq ? _mm256_fmadd_pd(lo, lo, *acc0) : _mm256_add_pd(*acc0, lo);
  *acc1 = sq ? _mm256_fmadd_pd(hi, hi, *acc1) : _mm256_add_pd(*acc1, hi);
}

// in (n) -> out (n) = exp((in - m) * mul); returns the sum of out, accumulated in double.
// mul = 1 is exact, so it also serves exp(in - m).
static inline double exp_sum(const float* in, float* out, int64_t n, float m, float mul) {
  const __m256 vm = _mm256_set1_ps(m), vmul = _mm256_set1_ps(mul);
  __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i k = mask8(n - i);
    const __m256 x = _mm256_maskload_ps(in + i, k);
    const __m256 e = _mm256_and_ps(_mm256_castsi256_ps(k), exp256(_mm256_mul_ps(_mm256_sub_ps(x, vm), vmul)));
    _mm256_maskstore_ps(out + i, k, e);
    add_pd(e, false, &acc0, &acc1);
  }
  return hsum_pd(_mm256_add_pd(acc0, acc1));
}

// x (n) *= s
static inline void scale_inplace(float* x, int64_t n, float s) {
  const __m256 vs = _mm256_set1_ps(s);
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i k = mask8(n - i);
    _mm256_maskstore_ps(x + i, k, _mm256_mul_ps(_mm256_maskload_ps(x + i, k), vs));
  }
}

// a (n) . b (n)
static inline float dot(const float* a, const float* b, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i k = mask8(n - i);
    acc = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, k), _mm256_maskload_ps(b + i, k), acc);
  }
  return hsum(acc);
}

// y (n) += a * x (n)
static inline void axpy(float a, const float* x, float* y, int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i k = mask8(n - i);
    _mm256_maskstore_ps(y + i, k, _mm256_fmadd_ps(va, _mm256_maskload_ps(x + i, k), _mm256_maskload_ps(y + i, k)));
  }
}
