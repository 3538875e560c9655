// AVX2 + FMA variants of the backward ops (same signatures and semantics as
// grad_ref.cc). 8-float vectors with maskload/maskstore tails, the Cephes-style
// polynomial exp of simd_avx2.h (about 2 ulp; below FLT_MIN flushes to 0), horizontal
// reductions in a fixed order (bit-reproducible per ISA). AdamW, scaled adds and
// dropout use separate multiplies and adds (no FMA): they round as the scalar reference.
#include <cmath>
#include "grad.h"
#include "ops.h"

// Rounding as written: no mul+add contracted into FMA behind the intrinsics' backs.
#pragma GCC optimize("fp-contract=off")
#include "simd_avx2.h"

namespace {

// Low 64 bits of a * b per u64 lane (AVX2 has no 64-bit multiply): three 32x32 products.
inline __m256i mul64(__m256i a, __m256i b) {
  const __m256i lo = _mm256_mul_epu32(a, b);
  const __m256i cross = _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(a, 32), b),
                                         _mm256_mul_epu32(a, _mm256_srli_epi64(b, 32)));
  return _mm256_add_epi64(lo, _mm256_slli_epi64(cross, 32));
}

// grad_splitmix64 for 4 u64 lanes; returns z >> 40.
inline __m256i hash4(__m256i idx, __m256i seed) {
  __m256i z = _mm256_add_epi64(seed, mul64(_mm256_add_epi64(idx, _mm256_set1_epi64x(1)),
                                           _mm256_set1_epi64x((long long)0x9E3779B97F4A7C15ull)));
  z = mul64(_mm256_xor_si256(z, _mm256_srli_epi64(z, 30)), _mm256_set1_epi64x((long long)0xBF58476D1CE4E5B9ull));
  z = mul64(_mm256_xor_si256(z, _mm256_srli_epi64(z, 27)), _mm256_set1_epi64x((long long)0x94D049BB133111EBull));
  return _mm256_srli_epi64(_mm256_xor_si256(z, _mm256_srli_epi64(z, 31)), 40);
}

}  // namespace

void grad_rmsnorm_bwd_f32_avx2(const float* x, const float* w, const float* dout, float* dx, float* rstd, int64_t C,
                               float eps, bool accumulate) {
  __m256 ss = _mm256_setzero_ps(), dt = _mm256_setzero_ps();
  for (int64_t c = 0; c < C; c += 8) {
    const __m256i k = mask8(C - c);
    const __m256 xv = _mm256_maskload_ps(x + c, k);
    ss = _mm256_fmadd_ps(xv, xv, ss);
    dt = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_maskload_ps(w + c, k), _mm256_maskload_ps(dout + c, k)), xv, dt);
  }
  const float r = 1.0f / std::sqrt(hsum(ss) / (float)C + eps);
  const float coef = r * r * r * hsum(dt) / (float)C;
  const __m256 vr = _mm256_set1_ps(r), vc = _mm256_set1_ps(coef);
  for (int64_t c = 0; c < C; c += 8) {
    const __m256i k = mask8(C - c);
    const __m256 wd = _mm256_mul_ps(_mm256_maskload_ps(w + c, k), _mm256_maskload_ps(dout + c, k));
    const __m256 v = _mm256_fmsub_ps(vr, wd, _mm256_mul_ps(vc, _mm256_maskload_ps(x + c, k)));
    _mm256_maskstore_ps(dx + c, k, accumulate ? _mm256_add_ps(_mm256_maskload_ps(dx + c, k), v) : v);
  }
  *rstd = r;
}

void grad_attention_bwd_f32_avx2(const float* q, const float* k, const float* v, const float* dout, float* dq,
                                 float* dk, float* dv, int64_t n, int64_t stride, int64_t D, float scale, float* p) {
  float* dp = p + n;
  float m = -INFINITY;
  for (int64_t s = 0; s < n; s++) {
    p[s] = dot(q, k + s * stride, D) * scale;
    m = p[s] > m ? p[s] : m;
  }
  const float inv = (float)(1.0 / exp_sum(p, p, n, m, 1.0f));
  double delta = 0;
  for (int64_t s = 0; s < n; s++) {
    p[s] *= inv;
    dp[s] = dot(dout, v + s * stride, D);
    delta += (double)p[s] * dp[s];
  }
  const float fdelta = (float)delta;
  for (int64_t d = 0; d < D; d++) dq[d] = 0;
  for (int64_t s = 0; s < n; s++) {
    const float a = p[s] * (dp[s] - fdelta) * scale;
    axpy(a, k + s * stride, dq, D);
    axpy(a, q, dk + s * stride, D);
    axpy(p[s], dout, dv + s * stride, D);
  }
}

void grad_silu_mul_bwd_f32_avx2(const float* gate, const float* up, const float* dout, float* dgate, float* dup,
                                int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i k = mask8(n - i);
    const __m256 g = _mm256_maskload_ps(gate + i, k), dy = _mm256_maskload_ps(dout + i, k);
    const __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, exp256(_mm256_sub_ps(_mm256_setzero_ps(), g))));
    _mm256_maskstore_ps(dup + i, k, _mm256_mul_ps(dy, _mm256_mul_ps(g, s)));
    const __m256 ds = _mm256_mul_ps(s, _mm256_add_ps(one, _mm256_mul_ps(g, _mm256_sub_ps(one, s))));
    _mm256_maskstore_ps(dgate + i, k, _mm256_mul_ps(_mm256_mul_ps(dy, _mm256_maskload_ps(up + i, k)), ds));
  }
}

double grad_cross_entropy_f32_avx2(float* x, int64_t V, int32_t label, double grad_scale, int32_t* predicted) {
  if (predicted) ops_argmax_f32_avx2(x, predicted, 1, V);
  const float m = max_of(x, V);
  const float target = x[label];
  const double sum = exp_sum(x, x, V, m, 1.0f);
  scale_inplace(x, V, (float)(grad_scale / sum));
  x[label] -= (float)grad_scale;
  return (double)m + std::log(sum) - (double)target;
}

void grad_dropout_f32_avx2(const float* x, float* out, int64_t n, uint64_t start, uint64_t seed, uint32_t threshold,
                           float scale) {
  const __m256i vseed = _mm256_set1_epi64x((long long)seed);
  const __m256i below = _mm256_set1_epi64x((long long)threshold - 1);  // keep iff u > threshold - 1
  const __m256i lanes = _mm256_setr_epi64x(0, 1, 2, 3);
  const __m256i pick = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
  const __m256 vs = _mm256_set1_ps(scale);
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i base = _mm256_add_epi64(_mm256_set1_epi64x((long long)(start + (uint64_t)i)), lanes);
    const __m256i k0 = _mm256_cmpgt_epi64(hash4(base, vseed), below);
    const __m256i k1 = _mm256_cmpgt_epi64(hash4(_mm256_add_epi64(base, _mm256_set1_epi64x(4)), vseed), below);
    // 4 + 4 lane masks of 64 bits -> 8 lane masks of 32 bits.
    const __m128i lo = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(k0, pick));
    const __m128i hi = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(k1, pick));
    const __m256 keep = _mm256_castsi256_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1));
    const __m256i k = mask8(n - i);
    _mm256_maskstore_ps(out + i, k, _mm256_and_ps(keep, _mm256_mul_ps(_mm256_maskload_ps(x + i, k), vs)));
  }
}

void grad_add_scaled_f32_avx2(const float* a, const float* b, float* out, int64_t n, float s) {
  const __m256 vs = _mm256_set1_ps(s);
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i k = mask8(n - i);
    _mm256_maskstore_ps(out + i, k, _mm256_add_ps(_mm256_maskload_ps(a + i, k), _mm256_mul_ps(vs, _mm256_maskload_ps(b + i, k))));
  }
}

void grad_scale_f32_avx2(float* x, int64_t n, float s) { scale_inplace(x, n, s); }

double grad_sum_squares_f32_avx2(const float* x, int64_t n) {
  __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
  for (int64_t i = 0; i < n; i += 8) add_pd(_mm256_maskload_ps(x + i, mask8(n - i)), true, &acc0, &acc1);
  return hsum_pd(_mm256_add_pd(acc0, acc1));
}

void grad_adamw_f32_avx2(float* param, const float* grad, float* m, float* v, int64_t n, const grad_adamw_consts* c) {
  const __m256 gs = _mm256_set1_ps(c->grad_scale), decay = _mm256_set1_ps(c->decay);
  const __m256 b1 = _mm256_set1_ps(c->beta1), ob1 = _mm256_set1_ps(c->one_minus_beta1);
  const __m256 b2 = _mm256_set1_ps(c->beta2), ob2 = _mm256_set1_ps(c->one_minus_beta2);
  const __m256 bc2 = _mm256_set1_ps(c->bc2_sqrt), eps = _mm256_set1_ps(c->eps), ns = _mm256_set1_ps(c->neg_step);
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i k = mask8(n - i);
    const __m256 g = _mm256_mul_ps(_mm256_maskload_ps(grad + i, k), gs);
    const __m256 p = _mm256_mul_ps(_mm256_maskload_ps(param + i, k), decay);
    const __m256 mi = _mm256_add_ps(_mm256_mul_ps(b1, _mm256_maskload_ps(m + i, k)), _mm256_mul_ps(ob1, g));
    const __m256 vi = _mm256_add_ps(_mm256_mul_ps(b2, _mm256_maskload_ps(v + i, k)), _mm256_mul_ps(_mm256_mul_ps(ob2, g), g));
    const __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), bc2), eps);
    _mm256_maskstore_ps(param + i, k, _mm256_add_ps(p, _mm256_div_ps(_mm256_mul_ps(ns, mi), denom)));
    _mm256_maskstore_ps(m + i, k, mi);
    _mm256_maskstore_ps(v + i, k, vi);
  }
}

// The column-run order of the AVX-512 kernel pays off through its vector converts; on AVX2
// the reference loop is used as it is.
void grad_rmsnorm_dw_f32_avx2(const float* x, const float* dout, const float* rstd, float* dw, int64_t N, int64_t C,
                              int64_t c0, int64_t c1) {
  grad_rmsnorm_dw_f32_ref(x, dout, rstd, dw, N, C, c0, c1);
}
