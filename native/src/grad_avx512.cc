// AVX-512 variants of the backward ops (same signatures and semantics as grad_ref.cc).
// 16-float vectors with masked tails, the Cephes-style polynomial exp of simd_avx512.h
// (about 2 ulp), horizontal reductions in a fixed order (bit-reproducible per ISA).
// AdamW, scaled adds and dropout use separate multiplies and adds (no FMA), so they
// round exactly as the scalar reference does.
#include <cmath>
#include "grad.h"

// Rounding as written: no mul+add contracted into FMA behind the intrinsics' backs.
#pragma GCC optimize("fp-contract=off")
#include "simd_avx512.h"

namespace {

// z = mix(seed + (idx + 1) gamma) for 8 u64 lanes (grad_splitmix64); returns z >> 40.
inline __m512i hash8(__m512i idx, __m512i seed) {
  __m512i z = _mm512_add_epi64(seed, _mm512_mullo_epi64(_mm512_add_epi64(idx, _mm512_set1_epi64(1)),
                                                        _mm512_set1_epi64((long long)0x9E3779B97F4A7C15ull)));
  z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 30)), _mm512_set1_epi64((long long)0xBF58476D1CE4E5B9ull));
  z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)), _mm512_set1_epi64((long long)0x94D049BB133111EBull));
  return _mm512_srli_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 31)), 40);
}

}  // namespace

// dw[c] += sum_i dout[i, c] x[i, c] rstd[i] for c in [c0, c1), as the ref: in double, rows
// in order. Each row's run of up to CH columns is read whole (the ref's 64-column blocks
// walk down the rows one short stride at a time), into double accumulators kept in L1.
void grad_rmsnorm_dw_f32_avx512(const float* x, const float* dout, const float* rstd, float* dw, int64_t N, int64_t C,
                                int64_t c0, int64_t c1) {
  constexpr int64_t CH = 512;
  alignas(64) double acc[CH];
  for (int64_t b = c0; b < c1; b += CH) {
    const int64_t n = c1 - b < CH ? c1 - b : CH;
    for (int64_t j = 0; j < CH; j++) acc[j] = 0;
    for (int64_t i = 0; i < N; i++) {
      const float* xr = x + i * C + b;
      const float* dr = dout + i * C + b;
      const __m512d r = _mm512_set1_pd((double)rstd[i]);
      for (int64_t j = 0; j < n; j += 8) {
        const __mmask8 m = n - j >= 8 ? (__mmask8)0xff : (__mmask8)((1u << (n - j)) - 1u);
        const __m512d xv = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, xr + j));
        const __m512d dv = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, dr + j));
        _mm512_store_pd(acc + j, _mm512_add_pd(_mm512_load_pd(acc + j), _mm512_mul_pd(_mm512_mul_pd(dv, xv), r)));
      }
    }
    for (int64_t j = 0; j < n; j++) dw[b + j] += (float)acc[j];
  }
}

void grad_rmsnorm_bwd_f32_avx512(const float* x, const float* w, const float* dout, float* dx, float* rstd, int64_t C,
                                 float eps, bool accumulate) {
  __m512 ss = _mm512_setzero_ps(), dt = _mm512_setzero_ps();
  for (int64_t c = 0; c < C; c += 16) {
    const __mmask16 k = mask16(C - c);
    const __m512 xv = _mm512_maskz_loadu_ps(k, x + c);
    ss = _mm512_fmadd_ps(xv, xv, ss);
    dt = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, w + c), _mm512_maskz_loadu_ps(k, dout + c)), xv, dt);
  }
  const float r = 1.0f / std::sqrt(_mm512_reduce_add_ps(ss) / (float)C + eps);
  const float coef = r * r * r * _mm512_reduce_add_ps(dt) / (float)C;
  const __m512 vr = _mm512_set1_ps(r), vc = _mm512_set1_ps(coef);
  for (int64_t c = 0; c < C; c += 16) {
    const __mmask16 k = mask16(C - c);
    const __m512 wd = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, w + c), _mm512_maskz_loadu_ps(k, dout + c));
    const __m512 v = _mm512_fmsub_ps(vr, wd, _mm512_mul_ps(vc, _mm512_maskz_loadu_ps(k, x + c)));
    _mm512_mask_storeu_ps(dx + c, k, accumulate ? _mm512_add_ps(_mm512_maskz_loadu_ps(k, dx + c), v) : v);
  }
  *rstd = r;
}

void grad_attention_bwd_f32_avx512(const float* q, const float* k, const float* v, const float* dout, float* dq,
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

void grad_silu_mul_bwd_f32_avx512(const float* gate, const float* up, const float* dout, float* dgate, float* dup,
                                  int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = mask16(n - i);
    const __m512 g = _mm512_maskz_loadu_ps(k, gate + i), dy = _mm512_maskz_loadu_ps(k, dout + i);
    const __m512 s = _mm512_div_ps(one, _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), g))));
    _mm512_mask_storeu_ps(dup + i, k, _mm512_mul_ps(dy, _mm512_mul_ps(g, s)));
    const __m512 ds = _mm512_mul_ps(s, _mm512_add_ps(one, _mm512_mul_ps(g, _mm512_sub_ps(one, s))));
    _mm512_mask_storeu_ps(dgate + i, k, _mm512_mul_ps(_mm512_mul_ps(dy, _mm512_maskz_loadu_ps(k, up + i)), ds));
  }
}

double grad_cross_entropy_f32_avx512(float* x, int64_t V, int32_t label, double grad_scale, int32_t* predicted) {
  const float m = max_of(x, V);
  if (predicted) *predicted = argmax_given_max(x, V, m);
  const float target = x[label];
  const double sum = exp_sum(x, x, V, m, 1.0f);
  scale_inplace(x, V, (float)(grad_scale / sum));
  x[label] -= (float)grad_scale;
  return (double)m + std::log(sum) - (double)target;
}

void grad_dropout_f32_avx512(const float* x, float* out, int64_t n, uint64_t start, uint64_t seed,
                             uint32_t threshold, float scale) {
  const __m512i vseed = _mm512_set1_epi64((long long)seed), thr = _mm512_set1_epi64(threshold);
  const __m512i lanes = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
  const __m512 vs = _mm512_set1_ps(scale);
  for (int64_t i = 0; i < n; i += 16) {
    const __m512i base = _mm512_add_epi64(_mm512_set1_epi64((long long)(start + (uint64_t)i)), lanes);
    const __mmask8 lo = _mm512_cmpge_epu64_mask(hash8(base, vseed), thr);
    const __mmask8 hi = _mm512_cmpge_epu64_mask(hash8(_mm512_add_epi64(base, _mm512_set1_epi64(8)), vseed), thr);
    const __mmask16 k = mask16(n - i);
    const __mmask16 keep = (__mmask16)(((unsigned)hi << 8) | lo);
    const __m512 y = _mm512_maskz_mul_ps(keep, _mm512_maskz_loadu_ps(k, x + i), vs);
    _mm512_mask_storeu_ps(out + i, k, y);
  }
}

void grad_add_scaled_f32_avx512(const float* a, const float* b, float* out, int64_t n, float s) {
  const __m512 vs = _mm512_set1_ps(s);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = mask16(n - i);
    const __m512 y = _mm512_add_ps(_mm512_maskz_loadu_ps(k, a + i), _mm512_mul_ps(vs, _mm512_maskz_loadu_ps(k, b + i)));
    _mm512_mask_storeu_ps(out + i, k, y);
  }
}

void grad_scale_f32_avx512(float* x, int64_t n, float s) { scale_inplace(x, n, s); }

double grad_sum_squares_f32_avx512(const float* x, int64_t n) {
  __m512d acc0 = _mm512_setzero_pd(), acc1 = _mm512_setzero_pd();
  for (int64_t i = 0; i < n; i += 16) add_pd(_mm512_maskz_loadu_ps(mask16(n - i), x + i), true, &acc0, &acc1);
  return _mm512_reduce_add_pd(_mm512_add_pd(acc0, acc1));
}

void grad_adamw_f32_avx512(float* param, const float* grad, float* m, float* v, int64_t n,
                           const grad_adamw_consts* c) {
  const __m512 gs = _mm512_set1_ps(c->grad_scale), decay = _mm512_set1_ps(c->decay);
  const __m512 b1 = _mm512_set1_ps(c->beta1), ob1 = _mm512_set1_ps(c->one_minus_beta1);
  const __m512 b2 = _mm512_set1_ps(c->beta2), ob2 = _mm512_set1_ps(c->one_minus_beta2);
  const __m512 bc2 = _mm512_set1_ps(c->bc2_sqrt), eps = _mm512_set1_ps(c->eps), ns = _mm512_set1_ps(c->neg_step);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = mask16(n - i);
    const __m512 g = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, grad + i), gs);
    const __m512 p = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, param + i), decay);
    const __m512 mi = _mm512_add_ps(_mm512_mul_ps(b1, _mm512_maskz_loadu_ps(k, m + i)), _mm512_mul_ps(ob1, g));
    const __m512 vi = _mm512_add_ps(_mm512_mul_ps(b2, _mm512_maskz_loadu_ps(k, v + i)), _mm512_mul_ps(_mm512_mul_ps(ob2, g), g));
    const __m512 denom = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vi), bc2), eps);
    _mm512_mask_storeu_ps(param + i, k, _mm512_add_ps(p, _mm512_div_ps(_mm512_mul_ps(ns, mi), denom)));
    _mm512_mask_storeu_ps(m + i, k, mi);
    _mm512_mask_storeu_ps(v + i, k, vi);
  }
}
