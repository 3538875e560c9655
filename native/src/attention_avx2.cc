// AVX2 tiled causal attention (attention.h), the AVX-512 kernels (attention_avx512.cc)
// cut to 16 ymm registers: every register block is 6 rows (or keys) x 16 floats = 12
// accumulators, with 2 loads and 6 broadcasts per 12 FMAs:
// - scores: a tile's 12 rows as two halves of 6 (the second skipped when nq <= 6), 16 keys
//   (half a packed block) at a time;
// - P V, dS K: 6 rows x 16 columns of D;  dK += dS^T Q, dV += P^T dO: 6 keys x 16 columns.
// D is covered in 16-wide chunks with masked tails. Sums run in a fixed order (d, keys,
// rows ascending), so results are bit-reproducible. The key panels are packed by
// ops_attention_pack_f32_ref.
#include <cmath>
#include <cstring>
#include "attention.h"
#include "simd_avx2.h"

namespace {

constexpr int64_t R = ATTN_ROWS;
constexpr int64_t KB = ATTN_KEYS;
constexpr int64_t HALF = 6;  // rows (or keys) per register block

// Row r of a tile, with rows past nq repeating the last real one.
inline int64_t row_of(int64_t r, int64_t nq) { return r < nq ? r : nq - 1; }

// Rows r0 .. r0 + 5 of q (at qstride; past nq the last row), kt -> sc rows (at ld) =
// scale * (q . k) for key columns [0, cols), cols a multiple of 16.
void scores_half(const float* q, int64_t r0, int64_t nq, int64_t qstride, const float* kt, int64_t cols, int64_t D,
                 float scale, float* sc, int64_t ld) {
  const __m256 vs = _mm256_set1_ps(scale);
  const float* qr[HALF];
  for (int64_t r = 0; r < HALF; r++) qr[r] = q + row_of(r0 + r, nq) * qstride;
  for (int64_t j = 0; j < cols; j += 16) {
    const float* kb = kt + (j / KB) * D * KB + j % KB;
    __m256 a0[HALF], a1[HALF];
#pragma GCC unroll 6
    for (int64_t r = 0; r < HALF; r++) a0[r] = a1[r] = _mm256_setzero_ps();
    for (int64_t d = 0; d < D; d++) {
      const __m256 k0 = _mm256_loadu_ps(kb + d * KB), k1 = _mm256_loadu_ps(kb + d * KB + 8);
#pragma GCC unroll 6
      for (int64_t r = 0; r < HALF; r++) {
        const __m256 b = _mm256_broadcast_ss(qr[r] + d);
        a0[r] = _mm256_fmadd_ps(b, k0, a0[r]);
        a1[r] = _mm256_fmadd_ps(b, k1, a1[r]);
      }
    }
#pragma GCC unroll 6
    for (int64_t r = 0; r < HALF; r++) {
      _mm256_storeu_ps(sc + (r0 + r) * ld + j, _mm256_mul_ps(a0[r], vs));
      _mm256_storeu_ps(sc + (r0 + r) * ld + j + 8, _mm256_mul_ps(a1[r], vs));
    }
  }
}

void scores(const float* q, int64_t nq, int64_t qstride, const float* kt, int64_t cols, int64_t D, float scale,
            float* sc, int64_t ld) {
  for (int64_t r0 = 0; r0 < nq; r0 += HALF) scores_half(q, r0, nq, qstride, kt, cols, D, scale, sc, ld);
}

// Score rows r < nq -> softmax numerators over n + r keys, zeros up to cols, inv[r] =
// 1 / sum (see attention_avx512.cc); scaled by inv[r] when normalize.
void softmax_rows(float* sc, int64_t ld, int64_t nq, int64_t n, int64_t cols, bool normalize, float* inv) {
  for (int64_t r = 0; r < nq; r++) {
    float* p = sc + r * ld;
    const int64_t nr = n + r;
    inv[r] = (float)(1.0 / exp_sum(p, p, nr, max_of(p, nr), 1.0f));
    if (normalize) scale_inplace(p, nr, inv[r]);
    std::memset(p + nr, 0, (size_t)(cols - nr) * sizeof(float));
  }
}

// p rows (nq, ld), x (n, D) at stride -> out rows r < nq = rs[r] sum_{s < n} p[r][s] x[s]
// (rs null: no scaling), keys ascending.
void rows_times(const float* p, int64_t ld, const float* x, int64_t n, int64_t stride, int64_t D, float* out,
                int64_t nq, int64_t ostride, const float* rs) {
  for (int64_t r0 = 0; r0 < nq; r0 += HALF) {
    const float* pr[HALF];
    float fr[HALF];
    for (int64_t r = 0; r < HALF; r++) {
      pr[r] = p + row_of(r0 + r, nq) * ld;
      fr[r] = rs ? rs[row_of(r0 + r, nq)] : 1.0f;
    }
    for (int64_t c = 0; c < D; c += 16) {
      const __m256i m0 = mask8(D - c), m1 = mask8(D - c - 8);
      __m256 a0[HALF], a1[HALF];
#pragma GCC unroll 6
      for (int64_t r = 0; r < HALF; r++) a0[r] = a1[r] = _mm256_setzero_ps();
      for (int64_t s = 0; s < n; s++) {
        const __m256 x0 = _mm256_maskload_ps(x + s * stride + c, m0), x1 = _mm256_maskload_ps(x + s * stride + c + 8, m1);
#pragma GCC unroll 6
        for (int64_t r = 0; r < HALF; r++) {
          const __m256 b = _mm256_broadcast_ss(pr[r] + s);
          a0[r] = _mm256_fmadd_ps(b, x0, a0[r]);
          a1[r] = _mm256_fmadd_ps(b, x1, a1[r]);
        }
      }
#pragma GCC unroll 6
      for (int64_t r = 0; r < HALF; r++) {
        if (r0 + r >= nq) continue;
        const __m256 f = _mm256_set1_ps(fr[r]);
        float* o = out + (r0 + r) * ostride + c;
        _mm256_maskstore_ps(o, m0, _mm256_mul_ps(a0[r], f));
        _mm256_maskstore_ps(o + 8, m1, _mm256_mul_ps(a1[r], f));
      }
    }
  }
}

// acc rows s .. s + 5 (at stride), 16 columns from c: += sum_{r < nq} w[r][s + kk] x[r].
void add_outer_keys(const float* w, int64_t ld, const float* x, int64_t nq, int64_t xstride, float* acc,
                    int64_t stride, __m256i m0, __m256i m1) {
  __m256 a0[HALF], a1[HALF];
#pragma GCC unroll 6
  for (int64_t kk = 0; kk < HALF; kk++) {
    a0[kk] = _mm256_maskload_ps(acc + kk * stride, m0);
    a1[kk] = _mm256_maskload_ps(acc + kk * stride + 8, m1);
  }
  for (int64_t r = 0; r < nq; r++) {
    const __m256 x0 = _mm256_maskload_ps(x + r * xstride, m0), x1 = _mm256_maskload_ps(x + r * xstride + 8, m1);
#pragma GCC unroll 6
    for (int64_t kk = 0; kk < HALF; kk++) {
      const __m256 b = _mm256_broadcast_ss(w + r * ld + kk);
      a0[kk] = _mm256_fmadd_ps(b, x0, a0[kk]);
      a1[kk] = _mm256_fmadd_ps(b, x1, a1[kk]);
    }
  }
#pragma GCC unroll 6
  for (int64_t kk = 0; kk < HALF; kk++) {
    _mm256_maskstore_ps(acc + kk * stride, m0, a0[kk]);
    _mm256_maskstore_ps(acc + kk * stride + 8, m1, a1[kk]);
  }
}

// w (R, ld), x rows (nq, D) at xstride -> acc rows s < n (at stride) += sum_{r < nq} w[r][s] x[r],
// rows ascending.
void add_outer(const float* w, int64_t ld, const float* x, int64_t nq, int64_t xstride, float* acc, int64_t n,
               int64_t stride, int64_t D) {
  for (int64_t c = 0; c < D; c += 16) {
    const __m256i m0 = mask8(D - c), m1 = mask8(D - c - 8);
    int64_t s = 0;
    for (; s + HALF <= n; s += HALF) add_outer_keys(w + s, ld, x + c, nq, xstride, acc + s * stride + c, stride, m0, m1);
    for (; s < n; s++) {
      float* as = acc + s * stride + c;
      __m256 a0 = _mm256_maskload_ps(as, m0), a1 = _mm256_maskload_ps(as + 8, m1);
      for (int64_t r = 0; r < nq; r++) {
        const __m256 b = _mm256_broadcast_ss(w + r * ld + s);
        a0 = _mm256_fmadd_ps(b, _mm256_maskload_ps(x + r * xstride + c, m0), a0);
        a1 = _mm256_fmadd_ps(b, _mm256_maskload_ps(x + r * xstride + c + 8, m1), a1);
      }
      _mm256_maskstore_ps(as, m0, a0);
      _mm256_maskstore_ps(as + 8, m1, a1);
    }
  }
}

// p, dp rows (nq, ld) -> dp[r][s] = p (dp - delta_r) scale for s < n + r, zeros up to cols;
// delta_r = sum_s p dp accumulated in double.
void softmax_bwd_rows(const float* p, float* dp, int64_t ld, int64_t nq, int64_t n, int64_t cols, float scale) {
  const __m256 vs = _mm256_set1_ps(scale);
  for (int64_t r = 0; r < nq; r++) {
    const float* pr = p + r * ld;
    float* dr = dp + r * ld;
    const int64_t nr = n + r;
    __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
    for (int64_t s = 0; s < nr; s += 8) {
      const __m256i k = mask8(nr - s);
      const __m256 a = _mm256_maskload_ps(pr + s, k), b = _mm256_maskload_ps(dr + s, k);
      acc0 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(a)), _mm256_cvtps_pd(_mm256_castps256_ps128(b)), acc0);
      acc1 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)), _mm256_cvtps_pd(_mm256_extractf128_ps(b, 1)), acc1);
    }
    const __m256 delta = _mm256_set1_ps((float)hsum_pd(_mm256_add_pd(acc0, acc1)));
    for (int64_t s = 0; s < nr; s += 8) {
      const __m256i k = mask8(nr - s);
      const __m256 a = _mm256_maskload_ps(pr + s, k), b = _mm256_maskload_ps(dr + s, k);
      _mm256_maskstore_ps(dr + s, k, _mm256_mul_ps(_mm256_mul_ps(a, _mm256_sub_ps(b, delta)), vs));
    }
    std::memset(dr + nr, 0, (size_t)(cols - nr) * sizeof(float));
  }
}

// x rows (nq, D) at stride -> dst (nq, D) contiguous (see attention_avx512.cc).
void copy_rows(const float* x, int64_t nq, int64_t stride, int64_t D, float* dst) {
  for (int64_t r = 0; r < nq; r++) std::memcpy(dst + r * D, x + r * stride, (size_t)D * sizeof(float));
}

}  // namespace

void ops_attention_tile_f32_avx2(const float* q, const float* kt, const float* v, float* out, int64_t nq,
                                 int64_t qstride, int64_t n, int64_t stride, int64_t D, float scale, float* scratch) {
  const int64_t keys = n + nq - 1, ld = attn_panel_keys(keys), cols = (keys + 15) / 16 * 16;
  float* sc = scratch;      // (R, ld) scores, then softmax numerators
  float* qc = sc + R * ld;  // (nq, D) q rows
  float inv[R];
  copy_rows(q, nq, qstride, D, qc);
  scores(qc, nq, D, kt, cols, D, scale, sc, ld);
  softmax_rows(sc, ld, nq, n, keys, false, inv);
  rows_times(sc, ld, v, keys, stride, D, out, nq, qstride, inv);
}

void grad_attention_bwd_tile_f32_avx2(const float* q, const float* kt, const float* vt, const float* k,
                                      const float* dout, float* dq, float* dk, float* dv, int64_t nq, int64_t qstride,
                                      int64_t n, int64_t stride, int64_t D, float scale, float* scratch) {
  const int64_t keys = n + nq - 1, ld = attn_panel_keys(keys), cols = (keys + 15) / 16 * 16;
  float* p = scratch;       // (R, ld) scores, then probabilities
  float* ds = p + R * ld;   // (R, ld) dP, then dS
  float* qc = ds + R * ld;  // (nq, D) q rows
  float* oc = qc + R * D;   // (nq, D) dout rows
  float inv[R];
  copy_rows(q, nq, qstride, D, qc);
  copy_rows(dout, nq, qstride, D, oc);
  scores(qc, nq, D, kt, cols, D, scale, p, ld);
  softmax_rows(p, ld, nq, n, keys, true, inv);
  scores(oc, nq, D, vt, cols, D, 1.0f, ds, ld);
  softmax_bwd_rows(p, ds, ld, nq, n, keys, scale);
  rows_times(ds, ld, k, keys, stride, D, dq, nq, qstride, nullptr);
  add_outer(ds, ld, qc, nq, D, dk, keys, stride, D);
  add_outer(p, ld, oc, nq, D, dv, keys, stride, D);
}
