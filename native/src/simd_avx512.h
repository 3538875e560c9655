// AVX-512 helpers shared by the ops and grad *_avx512.cc kernels: 16-lane tail masks,
// the Cephes-style polynomial exp, and the masked row loops (dot, axpy, scale,
// exp-and-sum) the forward and backward ops both use. Include only from *_avx512.cc files
// (they are compiled with the -mavx512* flags). Each includer compiles its own copy
// (static inline), under its own pragmas: grad_avx512.cc includes this after its
// fp-contract pragma, as the copies it replaces were.
#pragma once
#include <immintrin.h>
#include <cmath>
#include <cstdint>

// GCC 12's AVX-512 headers seed masked intrinsics with a self-initialised `__Y = __Y`
// and then warn about it (GCC bug 105593, fixed in GCC 13): silence that false positive
// here and in every file that includes this.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// Lane mask for the first min(rem, 16) lanes (none when rem <= 0).
static inline __mmask16 mask16(int64_t rem) {
  return rem >= 16 ? (__mmask16)0xffff : rem <= 0 ? (__mmask16)0 : (__mmask16)((1u << rem) - 1u);
}

// 16 f32 lanes rounded to bf16 as ft_f32_to_bf16 (cast_avx512.cc's integer rounding, not
// vcvtneps2bf16, which reads subnormals as zero): the bf16 pattern in each lane's low half.
static inline __m512i round_bf16(__m512 x) {
  const __m512i u = _mm512_castps_si512(x);
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  const __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), lsb)), 16);
  return _mm512_mask_blend_epi32(nan, r, _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40)));
}

// Max of x (n), n >= 1.
static inline float max_of(const float* x, int64_t n) {
  const __m512 ninf = _mm512_set1_ps(-INFINITY);
  __m512 m = ninf;
  for (int64_t i = 0; i < n; i += 16) m = _mm512_max_ps(m, _mm512_mask_loadu_ps(ninf, mask16(n - i), x + i));
  return _mm512_reduce_max_ps(m);
}

// x (n) with max_of(x, n) = mx -> the first index of mx, or of the first NaN (which wins
// wherever it is), 0 when there is neither: ops_argmax_f32's answer. The cross-entropy
// kernel has the row's max already, so its argmax is this one pass.
static inline int32_t argmax_given_max(const float* x, int64_t n, float mx) {
  const __m512 m = _mm512_set1_ps(mx);
  int64_t first = -1;
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 k = mask16(n - j);
    const __m512 a = _mm512_maskz_loadu_ps(k, x + j);
    const __mmask16 nan = _mm512_mask_cmp_ps_mask(k, a, a, _CMP_UNORD_Q);
    if (nan) return (int32_t)(j + __builtin_ctz(nan));
    const __mmask16 eq = first < 0 ? _mm512_mask_cmp_ps_mask(k, a, m, _CMP_EQ_OQ) : 0;
    if (eq) first = j + __builtin_ctz(eq);
  }
  return (int32_t)(first < 0 ? 0 : first);
}

// Transposes a 16 x 16 block of 32-bit lanes in place: r[i] lane j <-> r[j] lane i. Pairs
// of rows interleave, then 4-row groups inside 128-bit lanes, then the 128-bit lanes of
// the four groups are gathered (pure data movement: f32 values keep their bits).
static inline void transpose16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  for (int i = 0; i < 4; i++) {
    t[i] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0xdd);
    t[i + 8] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0xdd);
  }
  for (int i = 0; i < 4; i++) {
    r[i] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0xdd);
    r[i + 4] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0x88);
    r[i + 12] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0xdd);
  }
}

// exp(x) for 16 lanes: x = n ln2 + r, |r| <= ln2/2, exp(r) by the Cephes expf
// polynomial, then scaled by 2^n (scalef handles the denormal range and underflow to 0).
// NaN stays NaN; x is clamped to [-104, 88.72] so -inf gives 0.
static inline __m512 exp512(__m512 x) {
  x = _mm512_min_ps(_mm512_set1_ps(88.72283f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  const __m512 y = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r), _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(y, n);
}

// 16 floats widened to two 8-double halves and added to acc0, acc1 (squared when sq).
static inline void add_pd(__m512 e, bool sq, __m512d* acc0, __m512d* acc1) {
  const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(e));
  const __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1)));
  *acc0 = sq ? _mm512_fmadd_pd(lo, lo, *acc0) : _mm512_add_pd(*acc0, lo);
  *acc1 = sq ? _mm512_fmadd_pd(hi, hi, *acc1) : _mm512_add_pd(*acc1, hi);
}

// in (n) -> out (n) = exp((in - m) * mul); returns the sum of out, accumulated in double.
// mul = 1 is exact, so it also serves exp(in - m).
static inline double exp_sum(const float* in, float* out, int64_t n, float m, float mul) {
  const __m512 vm = _mm512_set1_ps(m), vmul = _mm512_set1_ps(mul);
  __m512d acc0 = _mm512_setzero_pd(), acc1 = _mm512_setzero_pd();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = mask16(n - i);
    const __m512 e = _mm512_maskz_mov_ps(k, exp512(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, in + i), vm), vmul)));
    _mm512_mask_storeu_ps(out + i, k, e);
    add_pd(e, false, &acc0, &acc1);
  }
  return _mm512_reduce_add_pd(_mm512_add_pd(acc0, acc1));
}

// x (n) *= s
static inline void scale_inplace(float* x, int64_t n, float s) {
  const __m512 vs = _mm512_set1_ps(s);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = mask16(n - i);
    _mm512_mask_storeu_ps(x + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), vs));
  }
}

// a (n) . b (n)
static inline float dot(const float* a, const float* b, int64_t n) {
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = mask16(n - i);
    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, a + i), _mm512_maskz_loadu_ps(k, b + i), acc);
  }
  return _mm512_reduce_add_ps(acc);
}

// y (n) += a * x (n)
static inline void axpy(float a, const float* x, float* y, int64_t n) {
  const __m512 va = _mm512_set1_ps(a);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = mask16(n - i);
    _mm512_mask_storeu_ps(y + i, k, _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(k, x + i), _mm512_maskz_loadu_ps(k, y + i)));
  }
}
