// AVX-512 variants of the Llama forward ops (same signatures and semantics as the
// scalar references in ops_ref.cc). 16-float vectors, masked loads/stores for row tails,
// a Cephes-style polynomial exp (simd_avx512.h; about 2 ulp) for softmax, attention and
// silu. Horizontal reductions use a fixed order, so results are bit-reproducible per ISA.
#include <cmath>
#include "ops.h"
#include "simd_avx512.h"

namespace {

// q (D) against the 4 key rows k + j * stride -> p[j] = scale * dot. Four independent
// accumulators keep the FMA units busy; each is the same chain dot() would compute.
void dot4(const float* q, const float* k, int64_t stride, int64_t D, float scale, float* p) {
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
  for (int64_t i = 0; i < D; i += 16) {
    const __mmask16 m = mask16(D - i);
    const __m512 qv = _mm512_maskz_loadu_ps(m, q + i);
    a0 = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(m, k + i), a0);
    a1 = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(m, k + stride + i), a1);
    a2 = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(m, k + 2 * stride + i), a2);
    a3 = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(m, k + 3 * stride + i), a3);
  }
  p[0] = _mm512_reduce_add_ps(a0) * scale;
  p[1] = _mm512_reduce_add_ps(a1) * scale;
  p[2] = _mm512_reduce_add_ps(a2) * scale;
  p[3] = _mm512_reduce_add_ps(a3) * scale;
}

// out (D) += p[0] v0 + p[1] v1 + p[2] v2 + p[3] v3, rows v + j * stride, added in that
// order (the same sums as four axpy calls, with one load/store of out instead of four).
void axpy4(const float* p, const float* v, int64_t stride, float* out, int64_t D) {
  const __m512 p0 = _mm512_set1_ps(p[0]), p1 = _mm512_set1_ps(p[1]), p2 = _mm512_set1_ps(p[2]), p3 = _mm512_set1_ps(p[3]);
  for (int64_t i = 0; i < D; i += 16) {
    const __mmask16 m = mask16(D - i);
    __m512 o = _mm512_fmadd_ps(p0, _mm512_maskz_loadu_ps(m, v + i), _mm512_maskz_loadu_ps(m, out + i));
    o = _mm512_fmadd_ps(p1, _mm512_maskz_loadu_ps(m, v + stride + i), o);
    o = _mm512_fmadd_ps(p2, _mm512_maskz_loadu_ps(m, v + 2 * stride + i), o);
    o = _mm512_fmadd_ps(p3, _mm512_maskz_loadu_ps(m, v + 3 * stride + i), o);
    _mm512_mask_storeu_ps(out + i, m, o);
  }
}

}  // namespace

// x (N, C), w (C) -> out (N, C)
void ops_rmsnorm_f32_avx512(const float* x, const float* w, float* out, int64_t N, int64_t C, float eps) {
  for (int64_t i = 0; i < N; i++) {
    const float* xr = x + i * C;
    float* o = out + i * C;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int64_t c = 0;
    for (; c + 32 <= C; c += 32) {
      const __m512 a = _mm512_loadu_ps(xr + c), b = _mm512_loadu_ps(xr + c + 16);
      acc0 = _mm512_fmadd_ps(a, a, acc0);
      acc1 = _mm512_fmadd_ps(b, b, acc1);
    }
    for (; c < C; c += 16) {
      const __mmask16 k = mask16(C - c);
      const __m512 a = _mm512_maskz_loadu_ps(k, xr + c);
      acc0 = _mm512_fmadd_ps(a, a, acc0);
    }
    const float ss = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    const __m512 r = _mm512_set1_ps(1.0f / std::sqrt(ss / (float)C + eps));
    for (c = 0; c < C; c += 16) {
      const __mmask16 k = mask16(C - c);
      const __m512 xn = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, xr + c), r);
      _mm512_mask_storeu_ps(o + c, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, w + c), xn));
    }
  }
}

// n rows (ops.h)
void ops_rope_f32_avx512(const float* x, int64_t xstride, const float* cos_t, const float* sin_t, int64_t tstride,
                         float* out, int64_t ostride, int64_t n, int64_t D) {
  const int64_t half = D / 2;
  for (int64_t i = 0; i < n; i++) {
    const float *xr = x + i * xstride, *cr = cos_t + i * tstride, *sr = sin_t + i * tstride;
    float* o = out + i * ostride;
    for (int64_t j = 0; j < half; j += 16) {
      const __mmask16 k = mask16(half - j);
      const __m512 x1 = _mm512_maskz_loadu_ps(k, xr + j), x2 = _mm512_maskz_loadu_ps(k, xr + half + j);
      const __m512 c = _mm512_maskz_loadu_ps(k, cr + j), s = _mm512_maskz_loadu_ps(k, sr + j);
      _mm512_mask_storeu_ps(o + j, k, _mm512_sub_ps(_mm512_mul_ps(x1, c), _mm512_mul_ps(x2, s)));
      _mm512_mask_storeu_ps(o + half + j, k, _mm512_add_ps(_mm512_mul_ps(x2, c), _mm512_mul_ps(x1, s)));
    }
  }
}

// One query row: q (D), k, v (n, D) at `stride` -> out (D); see ops_attention_f32_ref.
void ops_attention_f32_avx512(const float* q, const float* k, const float* v, float* out, int64_t n, int64_t stride,
                              int64_t D, float scale, float* p) {
  int64_t s = 0;
  for (; s + 4 <= n; s += 4) dot4(q, k + s * stride, stride, D, scale, p + s);
  for (; s < n; s++) p[s] = dot(q, k + s * stride, D) * scale;
  float m = -INFINITY;
  for (s = 0; s < n; s++) m = p[s] > m ? p[s] : m;
  scale_inplace(p, n, (float)(1.0 / exp_sum(p, p, n, m, 1.0f)));
  for (int64_t d = 0; d < D; d++) out[d] = 0;
  for (s = 0; s + 4 <= n; s += 4) axpy4(p + s, v + s * stride, stride, out, D);
  for (; s < n; s++) axpy(p[s], v + s * stride, out, D);
}

// gate (n), up (n) -> out (n)
void ops_silu_mul_f32_avx512(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = mask16(n - i);
    const __m512 g = _mm512_maskz_loadu_ps(k, gate + i);
    const __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), g));
    const __m512 s = _mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
    _mm512_mask_storeu_ps(out + i, k, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(k, up + i)));
  }
}

// a (n), b (n) -> out (n)
void ops_add_f32_avx512(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = mask16(n - i);
    _mm512_mask_storeu_ps(out + i, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, a + i), _mm512_maskz_loadu_ps(k, b + i)));
  }
}

// x (N, V) -> out (N, V); see ops_softmax_f32_ref for NaN / -inf behaviour.
void ops_softmax_f32_avx512(const float* x, float* out, int64_t N, int64_t V, float inv_temp) {
  for (int64_t i = 0; i < N; i++) {
    const float* xr = x + i * V;
    float* o = out + i * V;
    __m512 mx = _mm512_set1_ps(-INFINITY);
    __mmask16 nan = 0;
    for (int64_t j = 0; j < V; j += 16) {
      const __mmask16 k = mask16(V - j);
      const __m512 a = _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), k, xr + j);
      mx = _mm512_max_ps(a, mx);  // a NaN in `a` yields mx (the second operand)
      nan |= _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q);
    }
    const float m = nan ? NAN : _mm512_reduce_max_ps(mx);
    const float inv = (float)(1.0 / exp_sum(xr, o, V, m, inv_temp));
    scale_inplace(o, V, inv);
  }
}

// x (N, V) -> out (N): the first index of the maximum, or of the first NaN (as the ref).
// Two passes over each row, the second from cache: the max, then its first position.
void ops_argmax_f32_avx512(const float* x, int32_t* out, int64_t N, int64_t V) {
  for (int64_t i = 0; i < N; i++) out[i] = argmax_given_max(x + i * V, V, max_of(x + i * V, V));
}
