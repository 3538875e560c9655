// AVX-512 tiled causal attention (attention.h): forward and backward tiles of ATTN_ROWS
// = 12 query rows. Register blocking as in a GEMM micro-kernel:
// - scores: 12 rows x 32 keys = 24 zmm accumulators; per d one pair of key vectors
//   from the packed panel and 12 broadcasts of q[i][d];
// - P V, dS K: 6 rows x 64 columns of D = 24 accumulators; per key 4 value vectors and
//   6 broadcasts of p[i][s];
// - dK += dS^T Q, dV += P^T dO: 4 keys x 64 columns = 16 accumulators loaded from and
//   stored back to dk / dv once per tile; per row 4 vectors of q and 4 broadcasts.
// D is covered in 64-wide chunks with masked tails (D = 80: 64 + 16). Sums run in a fixed
// order (d, keys, rows ascending), so results are bit-reproducible.
#include <cmath>
#include "attention_avx512.h"

namespace {

constexpr int64_t R = ATTN_ROWS;
constexpr int64_t KB = ATTN_KEYS;
constexpr int64_t HALF = R / 2;  // rows per P V block

// q rows (nq, D) at qstride, kt (blocks of (D, KB)) -> sc (R, ld) = scale * (q . k) for key
// columns [0, cols), cols a multiple of 16 (a last half block runs 16 keys wide); rows past
// nq repeat the last one. Each score is one FMA chain over d ascending, then times scale.
void scores(const float* q, int64_t nq, int64_t qstride, const float* kt, int64_t cols, int64_t D, float scale,
            float* sc, int64_t ld) {
  const __m512 vs = _mm512_set1_ps(scale);
  const float* qr[R];
  for (int64_t r = 0; r < R; r++) qr[r] = q + row_of(r, nq) * qstride;
  int64_t jb = 0;
  for (; (jb + 1) * KB <= cols; jb++) {
    const float* kb = kt + jb * D * KB;
    __m512 a0[R], a1[R];
#pragma GCC unroll 12
    for (int64_t r = 0; r < R; r++) a0[r] = a1[r] = _mm512_setzero_ps();
    for (int64_t d = 0; d < D; d++) {
      const __m512 k0 = _mm512_loadu_ps(kb + d * KB), k1 = _mm512_loadu_ps(kb + d * KB + 16);
#pragma GCC unroll 12
      for (int64_t r = 0; r < R; r++) {
        const __m512 b = _mm512_set1_ps(qr[r][d]);
        a0[r] = _mm512_fmadd_ps(b, k0, a0[r]);
        a1[r] = _mm512_fmadd_ps(b, k1, a1[r]);
      }
    }
#pragma GCC unroll 12
    for (int64_t r = 0; r < R; r++) {
      _mm512_storeu_ps(sc + r * ld + jb * KB, _mm512_mul_ps(a0[r], vs));
      _mm512_storeu_ps(sc + r * ld + jb * KB + 16, _mm512_mul_ps(a1[r], vs));
    }
  }
  if (jb * KB == cols) return;
  const float* kb = kt + jb * D * KB;  // the first 16 keys of the last block
  __m512 a0[R];
#pragma GCC unroll 12
  for (int64_t r = 0; r < R; r++) a0[r] = _mm512_setzero_ps();
  for (int64_t d = 0; d < D; d++) {
    const __m512 k0 = _mm512_loadu_ps(kb + d * KB);
#pragma GCC unroll 12
    for (int64_t r = 0; r < R; r++) a0[r] = _mm512_fmadd_ps(_mm512_set1_ps(qr[r][d]), k0, a0[r]);
  }
#pragma GCC unroll 12
  for (int64_t r = 0; r < R; r++) _mm512_storeu_ps(sc + r * ld + jb * KB, _mm512_mul_ps(a0[r], vs));
}

// p rows (nq, ld), x (n, D) at stride -> out rows r < nq (at ostride) = sum_{s < n} p[r][s] x[s],
// keys ascending, times rs[r] when rs is not null. Blocks of HALF rows; a partial block
// repeats its last row.
void rows_times(const float* p, int64_t ld, const float* x, int64_t n, int64_t stride, int64_t D, float* out,
                int64_t nq, int64_t ostride, const float* rs) {
  for (int64_t r0 = 0; r0 < nq; r0 += HALF) {
    const float* pr[HALF];
    float fr[HALF];  // 1 when rs is null: the multiply is then exact
    for (int64_t r = 0; r < HALF; r++) {
      pr[r] = p + row_of(r0 + r, nq) * ld;
      fr[r] = rs ? rs[row_of(r0 + r, nq)] : 1.0f;
    }
    for (int64_t c = 0; c < D; c += 64) {
      __mmask16 m[4];
      chunk_masks(D, c, m);
      __m512 acc[HALF][4];
#pragma GCC unroll 6
      for (int64_t r = 0; r < HALF; r++)
        for (int64_t j = 0; j < 4; j++) acc[r][j] = _mm512_setzero_ps();
      for (int64_t s = 0; s < n; s++) {
        const float* xs = x + s * stride + c;
        __m512 xv[4];
        for (int64_t j = 0; j < 4; j++) xv[j] = _mm512_maskz_loadu_ps(m[j], xs + 16 * j);
#pragma GCC unroll 6
        for (int64_t r = 0; r < HALF; r++) {
          const __m512 b = _mm512_set1_ps(pr[r][s]);
          for (int64_t j = 0; j < 4; j++) acc[r][j] = _mm512_fmadd_ps(b, xv[j], acc[r][j]);
        }
      }
      // Constant trip counts with the row test inside keep acc in registers.
#pragma GCC unroll 6
      for (int64_t r = 0; r < HALF; r++) {
        if (r0 + r >= nq) continue;
        const __m512 f = _mm512_set1_ps(fr[r]);
        for (int64_t j = 0; j < 4; j++)
          _mm512_mask_storeu_ps(out + (r0 + r) * ostride + c + 16 * j, m[j], _mm512_mul_ps(acc[r][j], f));
      }
    }
  }
}

// acc rows s .. s + NK - 1 (at stride) += sum_{r < nq} w[r][s + kk] x[r] over the 64-wide D
// chunk at c, rows ascending: NK x 4 accumulators, loaded and stored once.
constexpr int64_t NK = 6;
void add_outer_keys(const float* w, int64_t ld, const float* x, int64_t nq, int64_t xstride, float* acc,
                    int64_t stride, const __mmask16* m) {
  __m512 a[NK][4];
#pragma GCC unroll 6
  for (int64_t kk = 0; kk < NK; kk++)
    for (int64_t j = 0; j < 4; j++) a[kk][j] = _mm512_maskz_loadu_ps(m[j], acc + kk * stride + 16 * j);
  for (int64_t r = 0; r < nq; r++) {
    const float* xr = x + r * xstride;
    __m512 xv[4];
    for (int64_t j = 0; j < 4; j++) xv[j] = _mm512_maskz_loadu_ps(m[j], xr + 16 * j);
#pragma GCC unroll 6
    for (int64_t kk = 0; kk < NK; kk++) {
      const __m512 b = _mm512_set1_ps(w[r * ld + kk]);
      for (int64_t j = 0; j < 4; j++) a[kk][j] = _mm512_fmadd_ps(b, xv[j], a[kk][j]);
    }
  }
#pragma GCC unroll 6
  for (int64_t kk = 0; kk < NK; kk++)
    for (int64_t j = 0; j < 4; j++) _mm512_mask_storeu_ps(acc + kk * stride + 16 * j, m[j], a[kk][j]);
}

// w (R, ld), x rows (nq, D) at xstride -> acc rows s < n (at stride) += sum_{r < nq} w[r][s] x[r],
// rows ascending.
void add_outer(const float* w, int64_t ld, const float* x, int64_t nq, int64_t xstride, float* acc, int64_t n,
               int64_t stride, int64_t D) {
  for (int64_t c = 0; c < D; c += 64) {
    __mmask16 m[4];
    chunk_masks(D, c, m);
    int64_t s = 0;
    for (; s + NK <= n; s += NK) add_outer_keys(w + s, ld, x + c, nq, xstride, acc + s * stride + c, stride, m);
    for (; s < n; s++) {
      __m512 a[4];
      for (int64_t j = 0; j < 4; j++) a[j] = _mm512_maskz_loadu_ps(m[j], acc + s * stride + c + 16 * j);
      for (int64_t r = 0; r < nq; r++) {
        const __m512 b = _mm512_set1_ps(w[r * ld + s]);
        for (int64_t j = 0; j < 4; j++) a[j] = _mm512_fmadd_ps(b, _mm512_maskz_loadu_ps(m[j], x + r * xstride + c + 16 * j), a[j]);
      }
      for (int64_t j = 0; j < 4; j++) _mm512_mask_storeu_ps(acc + s * stride + c + 16 * j, m[j], a[j]);
    }
  }
}

}  // namespace

// k (n, D) at stride -> kt, as ops_attention_pack_f32_ref, in 16 x 16 register transposes.
void ops_attention_pack_f32_avx512(const float* k, int64_t n, int64_t stride, int64_t D, float* kt) {
  const int64_t keys = attn_panel_keys(n);
  for (int64_t s0 = 0; s0 < keys; s0 += 16) {
    float* dst = kt + (s0 / KB) * D * KB + s0 % KB;
    for (int64_t d0 = 0; d0 < D; d0 += 16) {
      const __mmask16 m = mask16(D - d0);
      __m512i r[16];
      for (int64_t j = 0; j < 16; j++)
        r[j] = s0 + j < n ? _mm512_maskz_loadu_epi32(m, k + (s0 + j) * stride + d0) : _mm512_setzero_si512();
      transpose16(r);
      for (int64_t i = 0; i < 16 && d0 + i < D; i++) _mm512_storeu_si512(dst + (d0 + i) * KB, r[i]);
    }
  }
}

void ops_attention_tile_f32_avx512(const float* q, const float* kt, const float* v, float* out, int64_t nq,
                                   int64_t qstride, int64_t n, int64_t stride, int64_t D, float scale,
                                   float* scratch) {
  // Keys of the last row; score columns computed (whole 16-key vectors).
  const int64_t keys = n + nq - 1, ld = attn_panel_keys(keys), cols = (keys + 15) / 16 * 16;
  float* sc = scratch;      // (R, ld) scores, then softmax numerators
  float* qc = sc + R * ld;  // (nq, D) q rows
  float inv[R];
  copy_rows(q, nq, qstride, D, qc);
  scores(qc, nq, D, kt, cols, D, scale, sc, ld);
  softmax_rows(sc, ld, nq, n, keys, false, inv);
  rows_times(sc, ld, v, keys, stride, D, out, nq, qstride, inv);
}

void grad_attention_bwd_tile_f32_avx512(const float* q, const float* kt, const float* vt, const float* k,
                                        const float* dout, float* dq, float* dk, float* dv, int64_t nq,
                                        int64_t qstride, int64_t n, int64_t stride, int64_t D, float scale,
                                        float* scratch) {
  // Keys of the last row; score columns computed (whole 16-key vectors).
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
