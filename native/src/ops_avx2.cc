// AVX2 + FMA variants of the Llama forward ops (same signatures and semantics as the
// scalar references in ops_ref.cc). 8-float vectors, maskload/maskstore for row tails,
// a Cephes-style polynomial exp (simd_avx2.h; about 2 ulp, results below FLT_MIN flush
// to 0) for softmax, attention and silu. Horizontal reductions use a fixed order, so
// results are bit-reproducible per ISA.
#include <cmath>
#include "ops.h"
#include "simd_avx2.h"

namespace {

// q (D) against the 4 key rows k + j * stride -> p[j] = scale * dot. Four independent
// accumulators keep the FMA units busy; each is the same chain dot() would compute.
void dot4(const float* q, const float* k, int64_t stride, int64_t D, float scale, float* p) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  for (int64_t i = 0; i < D; i += 8) {
    const __m256i m = mask8(D - i);
    const __m256 qv = _mm256_maskload_ps(q + i, m);
    a0 = _mm256_fmadd_ps(qv, _mm256_maskload_ps(k + i, m), a0);
    a1 = _mm256_fmadd_ps(qv, _mm256_maskload_ps(k + stride + i, m), a1);
    a2 = _mm256_fmadd_ps(qv, _mm256_maskload_ps(k + 2 * stride + i, m), a2);
    a3 = _mm256_fmadd_ps(qv, _mm256_maskload_ps(k + 3 * stride + i, m), a3);
  }
  p[0] = hsum(a0) * scale;
  p[1] = hsum(a1) * scale;
  p[2] = hsum(a2) * scale;
  p[3] = hsum(a3) * scale;
}

// out (D) += p[0] v0 + p[1] v1 + p[2] v2 + p[3] v3, rows v + j * stride, added in that
// order (the same sums as four axpy calls, with one load/store of out instead of four).
void axpy4(const float* p, const float* v, int64_t stride, float* out, int64_t D) {
  const __m256 p0 = _mm256_set1_ps(p[0]), p1 = _mm256_set1_ps(p[1]), p2 = _mm256_set1_ps(p[2]), p3 = _mm256_set1_ps(p[3]);
  for (int64_t i = 0; i < D; i += 8) {
    const __m256i m = mask8(D - i);
    __m256 o = _mm256_fmadd_ps(p0, _mm256_maskload_ps(v + i, m), _mm256_maskload_ps(out + i, m));
    o = _mm256_fmadd_ps(p1, _mm256_maskload_ps(v + stride + i, m), o);
    o = _mm256_fmadd_ps(p2, _mm256_maskload_ps(v + 2 * stride + i, m), o);
    o = _mm256_fmadd_ps(p3, _mm256_maskload_ps(v + 3 * stride + i, m), o);
    _mm256_maskstore_ps(out + i, m, o);
  }
}

}  // namespace

// x (N, C), w (C) -> out (N, C)
void ops_rmsnorm_f32_avx2(const float* x, const float* w, float* out, int64_t N, int64_t C, float eps) {
  for (int64_t i = 0; i < N; i++) {
    const float* xr = x + i * C;
    float* o = out + i * C;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 16 <= C; c += 16) {
      const __m256 a = _mm256_loadu_ps(xr + c), b = _mm256_loadu_ps(xr + c + 8);
      acc0 = _mm256_fmadd_ps(a, a, acc0);
      acc1 = _mm256_fmadd_ps(b, b, acc1);
    }
    for (; c < C; c += 8) {
      const __m256 a = _mm256_maskload_ps(xr + c, mask8(C - c));
      acc0 = _mm256_fmadd_ps(a, a, acc0);
    }
    const float ss = hsum(_mm256_add_ps(acc0, acc1));
    const __m256 r = _mm256_set1_ps(1.0f / std::sqrt(ss / (float)C + eps));
    for (c = 0; c < C; c += 8) {
      const __m256i k = mask8(C - c);
      const __m256 xn = _mm256_mul_ps(_mm256_maskload_ps(xr + c, k), r);
      _mm256_maskstore_ps(o + c, k, _mm256_mul_ps(_mm256_maskload_ps(w + c, k), xn));
    }
  }
}

// n rows (ops.h)
void ops_rope_f32_avx2(const float* x, int64_t xstride, const float* cos_t, const float* sin_t, int64_t tstride,
                       float* out, int64_t ostride, int64_t n, int64_t D) {
  const int64_t half = D / 2;
  for (int64_t i = 0; i < n; i++) {
    const float *xr = x + i * xstride, *cr = cos_t + i * tstride, *sr = sin_t + i * tstride;
    float* o = out + i * ostride;
    for (int64_t j = 0; j < half; j += 8) {
      const __m256i k = mask8(half - j);
      const __m256 x1 = _mm256_maskload_ps(xr + j, k), x2 = _mm256_maskload_ps(xr + half + j, k);
      const __m256 c = _mm256_maskload_ps(cr + j, k), s = _mm256_maskload_ps(sr + j, k);
      _mm256_maskstore_ps(o + j, k, _mm256_sub_ps(_mm256_mul_ps(x1, c), _mm256_mul_ps(x2, s)));
      _mm256_maskstore_ps(o + half + j, k, _mm256_add_ps(_mm256_mul_ps(x2, c), _mm256_mul_ps(x1, s)));
    }
  }
}

// One query row: q (D), k, v (n, D) at `stride` -> out (D); see ops_attention_f32_ref.
void ops_attention_f32_avx2(const float* q, const float* k, const float* v, float* out, int64_t n, int64_t stride,
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
void ops_silu_mul_f32_avx2(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i k = mask8(n - i);
    const __m256 g = _mm256_maskload_ps(gate + i, k);
    const __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), g));
    const __m256 s = _mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
    _mm256_maskstore_ps(out + i, k, _mm256_mul_ps(s, _mm256_maskload_ps(up + i, k)));
  }
}

// a (n), b (n) -> out (n)
void ops_add_f32_avx2(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i k = mask8(n - i);
    _mm256_maskstore_ps(out + i, k, _mm256_add_ps(_mm256_maskload_ps(a + i, k), _mm256_maskload_ps(b + i, k)));
  }
}

// x (N, V) -> out (N, V); see ops_softmax_f32_ref for NaN / -inf behaviour.
void ops_softmax_f32_avx2(const float* x, float* out, int64_t N, int64_t V, float inv_temp) {
  const __m256 ninf = _mm256_set1_ps(-INFINITY);
  for (int64_t i = 0; i < N; i++) {
    const float* xr = x + i * V;
    float* o = out + i * V;
    __m256 mx = ninf, nan = _mm256_setzero_ps();
    for (int64_t j = 0; j < V; j += 8) {
      const __m256i k = mask8(V - j);
      const __m256 a = _mm256_blendv_ps(ninf, _mm256_maskload_ps(xr + j, k), _mm256_castsi256_ps(k));
      mx = _mm256_max_ps(a, mx);  // a NaN in `a` yields mx (the second operand)
      nan = _mm256_or_ps(nan, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
    }
    const float m = _mm256_movemask_ps(nan) ? NAN : hmax(mx);
    const float inv = (float)(1.0 / exp_sum(xr, o, V, m, inv_temp));
    scale_inplace(o, V, inv);
  }
}

// x (N, V) -> out (N): the first index of the maximum, or of the first NaN (as the ref).
// Two passes over each row, the second from cache: the max, then its first position,
// scanning on for a NaN.
void ops_argmax_f32_avx2(const float* x, int32_t* out, int64_t N, int64_t V) {
  for (int64_t i = 0; i < N; i++) {
    const float* row = x + i * V;
    const __m256 m = _mm256_set1_ps(max_of(row, V));
    int64_t first = -1;
    for (int64_t j = 0; j < V; j += 8) {
      const int valid = V - j >= 8 ? 0xff : (1 << (V - j)) - 1;
      const __m256 a = _mm256_maskload_ps(row + j, mask8(V - j));
      const int nan = _mm256_movemask_ps(_mm256_cmp_ps(a, a, _CMP_UNORD_Q)) & valid;
      if (nan) {
        first = j + __builtin_ctz(nan);
        break;
      }
      const int eq = first < 0 ? _mm256_movemask_ps(_mm256_cmp_ps(a, m, _CMP_EQ_OQ)) & valid : 0;
      if (eq) first = j + __builtin_ctz(eq);
    }
    out[i] = (int32_t)(first < 0 ? 0 : first);
  }
}
