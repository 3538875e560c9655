// AVX-512 bf16 tiled causal attention (attention.h), the autocast path: the f32 tiles'
// register blocking (attention_avx512.cc) with vdpbf16ps, which multiplies a bf16 pair
// and adds both products to an f32 lane, so each instruction does two of the f32 tile's
// FMAs:
// - scores: 12 rows x 32 keys = 24 accumulators; per d pair two key-panel vectors and 12
//   broadcasts of a q pair;
// - P V, dS K: 6 rows x 64 columns of D; per key pair 4 row-pair vectors and 6 broadcasts
//   of a (p[s], p[s+1]) pair;
// - dK += dS^T Q, dV += P^T dO: 6 keys x 64 columns loaded from and stored back to dk /
//   dv once per tile; per row pair 4 vectors of (q[2i], q[2i+1]) and 6 broadcasts.
// Every rounding is vcvtne(2)ps2bf16's: nearest even, one instruction per 16 or 32
// values, a subnormal f32 becoming zero (the reference, src/backend/ref, rounds the same
// way). Sums run in a fixed order, so results are bit-reproducible for any thread count.
#include "attention_avx512.h"

namespace {

constexpr int64_t R = ATTN_ROWS;
constexpr int64_t KB = ATTN_KEYS;
constexpr int64_t HALF = R / 2;  // rows per P V block, and row pairs per tile
constexpr int64_t NK = 6;        // keys per dK / dV register block

inline __m512bh bh(__m512i x) { return (__m512bh)x; }

// x[0 .. min(rem, 32)) rounded -> 16 u32 lanes, lane i = (x[2i], x[2i+1]); zero past rem
// (an odd rem gets a zero partner).
inline __m512i pairs16(const float* x, int64_t rem) {
  const __m512 a = _mm512_maskz_loadu_ps(mask16(rem), x), b = _mm512_maskz_loadu_ps(mask16(rem - 16), x + 16);
  return (__m512i)_mm512_cvtne2ps_pbh(b, a);
}

// The first min(rem, 16) values of rows lo and hi rounded -> 16 u32 lanes, lane i =
// (lo[i], hi[i]); hi null reads as zeros.
inline __m512i interleave16(const float* lo, const float* hi, int64_t rem) {
  const __mmask16 m = mask16(rem);
  const __m512 a = _mm512_maskz_loadu_ps(m, lo), b = hi ? _mm512_maskz_loadu_ps(m, hi) : _mm512_setzero_ps();
  // u16 lanes: a's 16 values, then b's; pair them up.
  const __m512i zip = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5,
                                       20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(zip, (__m512i)_mm512_cvtne2ps_pbh(b, a));
}

// x (n) -> dst (attn_pairs(n)) pairs along x.
void to_pairs(const float* x, int64_t n, uint32_t* dst) {
  for (int64_t i = 0; i < n; i += 32) _mm512_mask_storeu_epi32(dst + i / 2, mask16(attn_pairs(n - i)), pairs16(x + i, n - i));
}

// w rows (nq, ld), n columns -> wt (attn_row_pairs(nq), ld): pair (i, s) = (w[2i][s],
// w[2i+1][s]), the partner of a last odd row zero.
void row_pairs(const float* w, int64_t ld, int64_t nq, int64_t n, uint32_t* wt) {
  for (int64_t i = 0; 2 * i < nq; i++) {
    const float* lo = w + 2 * i * ld;
    const float* hi = 2 * i + 1 < nq ? lo + ld : nullptr;
    for (int64_t s = 0; s < n; s += 16)
      _mm512_mask_storeu_epi32(wt + i * ld + s, mask16(n - s), interleave16(lo + s, hi ? hi + s : nullptr, n - s));
  }
}

// x (n) -> x times s, rounded to bf16 (as f32 values): scale_inplace then rounding, one pass.
void scale_round_inplace(float* x, int64_t n, float s) {
  const __m512 vs = _mm512_set1_ps(s);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = mask16(n - i);
    const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vs);
    const __m512i h = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(v));
    _mm512_mask_storeu_ps(x + i, m, _mm512_castsi512_ps(_mm512_slli_epi32(h, 16)));
  }
}

// Score rows r < nq of sc (R, ld) -> pp rows (nq, ld / 2): the softmax numerators
// e = exp(score - max) over the row's n + r keys as bf16 pairs along the keys, zero from
// there up to `keys`; inv[r] = 1 / sum e (of the f32 values, in double) rounded to f32.
// The values and sums of softmax_rows then to_pairs, in one pass that keeps e in registers.
void numerator_pairs(const float* sc, int64_t ld, int64_t nq, int64_t n, int64_t keys, uint32_t* pp, float* inv) {
  for (int64_t r = 0; r < nq; r++) {
    const float* x = sc + r * ld;
    uint32_t* dst = pp + r * (ld / 2);
    const int64_t nr = n + r;
    const __m512 vm = _mm512_set1_ps(max_of(x, nr));
    __m512d acc0 = _mm512_setzero_pd(), acc1 = _mm512_setzero_pd();
    for (int64_t i = 0; i < keys; i += 32) {
      const __mmask16 k0 = mask16(nr - i), k1 = mask16(nr - i - 16);
      const __m512 e0 = _mm512_maskz_mov_ps(k0, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k0, x + i), vm)));
      const __m512 e1 = _mm512_maskz_mov_ps(k1, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k1, x + i + 16), vm)));
      add_pd(e0, false, &acc0, &acc1);  // zeros past nr leave the (non-negative) sums as they are
      add_pd(e1, false, &acc0, &acc1);
      _mm512_mask_storeu_epi32(dst + i / 2, mask16(attn_pairs(keys - i)), (__m512i)_mm512_cvtne2ps_pbh(e1, e0));
    }
    inv[r] = (float)(1.0 / _mm512_reduce_add_pd(_mm512_add_pd(acc0, acc1)));
  }
}

// qp (R, np) pairs of each tile row, kt a key-major panel -> sc (R, ld) = scale * (q . k)
// for key columns [0, cols), cols a multiple of 16; as scores() of the f32 tile, d pairs
// ascending.
void scores(const uint32_t* qp, int64_t np, const uint32_t* kt, int64_t cols, float scale, float* sc, int64_t ld) {
  const __m512 vs = _mm512_set1_ps(scale);
  int64_t jb = 0;
  for (; (jb + 1) * KB <= cols; jb++) {
    const uint32_t* kb = kt + jb * np * KB;
    __m512 a0[R], a1[R];
#pragma GCC unroll 12
    for (int64_t r = 0; r < R; r++) a0[r] = a1[r] = _mm512_setzero_ps();
    for (int64_t p = 0; p < np; p++) {
      const __m512bh k0 = bh(_mm512_loadu_si512(kb + p * KB)), k1 = bh(_mm512_loadu_si512(kb + p * KB + 16));
#pragma GCC unroll 12
      for (int64_t r = 0; r < R; r++) {
        const __m512bh b = bh(_mm512_set1_epi32((int)qp[r * np + p]));
        a0[r] = _mm512_dpbf16_ps(a0[r], b, k0);
        a1[r] = _mm512_dpbf16_ps(a1[r], b, k1);
      }
    }
#pragma GCC unroll 12
    for (int64_t r = 0; r < R; r++) {
      _mm512_storeu_ps(sc + r * ld + jb * KB, _mm512_mul_ps(a0[r], vs));
      _mm512_storeu_ps(sc + r * ld + jb * KB + 16, _mm512_mul_ps(a1[r], vs));
    }
  }
  if (jb * KB == cols) return;
  const uint32_t* kb = kt + jb * np * KB;  // the first 16 keys of the last block
  __m512 a0[R];
#pragma GCC unroll 12
  for (int64_t r = 0; r < R; r++) a0[r] = _mm512_setzero_ps();
  for (int64_t p = 0; p < np; p++) {
    const __m512bh k0 = bh(_mm512_loadu_si512(kb + p * KB));
#pragma GCC unroll 12
    for (int64_t r = 0; r < R; r++) a0[r] = _mm512_dpbf16_ps(a0[r], bh(_mm512_set1_epi32((int)qp[r * np + p])), k0);
  }
#pragma GCC unroll 12
  for (int64_t r = 0; r < R; r++) _mm512_storeu_ps(sc + r * ld + jb * KB, _mm512_mul_ps(a0[r], vs));
}

// pp rows (nq, ldp) of key pairs, xp a row-pair panel of np key pairs -> out rows r < nq
// (at ostride) = sum_s p[r][s] x[s], key pairs ascending, times rs[r] when rs is not null.
void rows_times(const uint32_t* pp, int64_t ldp, const uint32_t* xp, int64_t np, int64_t D, float* out, int64_t nq,
                int64_t ostride, const float* rs) {
  for (int64_t r0 = 0; r0 < nq; r0 += HALF) {
    const uint32_t* pr[HALF];
    float fr[HALF];
    for (int64_t r = 0; r < HALF; r++) {
      pr[r] = pp + row_of(r0 + r, nq) * ldp;
      fr[r] = rs ? rs[row_of(r0 + r, nq)] : 1.0f;
    }
    for (int64_t c = 0; c < D; c += 64) {
      __mmask16 m[4];
      chunk_masks(D, c, m);
      __m512 acc[HALF][4];
#pragma GCC unroll 6
      for (int64_t r = 0; r < HALF; r++)
        for (int64_t j = 0; j < 4; j++) acc[r][j] = _mm512_setzero_ps();
      for (int64_t s = 0; s < np; s++) {
        const uint32_t* xs = xp + s * D + c;
        __m512bh xv[4];
        for (int64_t j = 0; j < 4; j++) xv[j] = bh(_mm512_maskz_loadu_epi32(m[j], xs + 16 * j));
#pragma GCC unroll 6
        for (int64_t r = 0; r < HALF; r++) {
          const __m512bh b = bh(_mm512_set1_epi32((int)pr[r][s]));
          for (int64_t j = 0; j < 4; j++) acc[r][j] = _mm512_dpbf16_ps(acc[r][j], b, xv[j]);
        }
      }
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

// acc rows s .. s + NK - 1 (D apart) += sum_i w[i][s + kk] x[i] over the 64-wide D chunk
// at c, row pairs i < npr ascending (w, x as row pairs).
void add_outer_keys(const uint32_t* wt, int64_t ld, const uint32_t* xt, int64_t npr, int64_t D, float* acc,
                    const __mmask16* m) {
  __m512 a[NK][4];
#pragma GCC unroll 6
  for (int64_t kk = 0; kk < NK; kk++)
    for (int64_t j = 0; j < 4; j++) a[kk][j] = _mm512_maskz_loadu_ps(m[j], acc + kk * D + 16 * j);
  for (int64_t i = 0; i < npr; i++) {
    __m512bh xv[4];
    for (int64_t j = 0; j < 4; j++) xv[j] = bh(_mm512_maskz_loadu_epi32(m[j], xt + i * D + 16 * j));
#pragma GCC unroll 6
    for (int64_t kk = 0; kk < NK; kk++) {
      const __m512bh b = bh(_mm512_set1_epi32((int)wt[i * ld + kk]));
      for (int64_t j = 0; j < 4; j++) a[kk][j] = _mm512_dpbf16_ps(a[kk][j], b, xv[j]);
    }
  }
#pragma GCC unroll 6
  for (int64_t kk = 0; kk < NK; kk++)
    for (int64_t j = 0; j < 4; j++) _mm512_mask_storeu_ps(acc + kk * D + 16 * j, m[j], a[kk][j]);
}

// wt (npr, ld), xt (npr, D) row pairs -> acc rows s < n (D apart) += sum_r w[r][s] x[r].
void add_outer(const uint32_t* wt, int64_t ld, const uint32_t* xt, int64_t npr, float* acc, int64_t n, int64_t D) {
  for (int64_t c = 0; c < D; c += 64) {
    __mmask16 m[4];
    chunk_masks(D, c, m);
    int64_t s = 0;
    for (; s + NK <= n; s += NK) add_outer_keys(wt + s, ld, xt + c, npr, D, acc + s * D + c, m);
    for (; s < n; s++) {
      __m512 a[4];
      for (int64_t j = 0; j < 4; j++) a[j] = _mm512_maskz_loadu_ps(m[j], acc + s * D + c + 16 * j);
      for (int64_t i = 0; i < npr; i++) {
        const __m512bh b = bh(_mm512_set1_epi32((int)wt[i * ld + s]));
        for (int64_t j = 0; j < 4; j++)
          a[j] = _mm512_dpbf16_ps(a[j], b, bh(_mm512_maskz_loadu_epi32(m[j], xt + i * D + c + 16 * j)));
      }
      for (int64_t j = 0; j < 4; j++) _mm512_mask_storeu_ps(acc + s * D + c + 16 * j, m[j], a[j]);
    }
  }
}

// q rows (nq, D) at qstride -> qp (R, attn_pairs(D)) pairs along d, rows past nq
// repeating the last one.
void query_pairs(const float* q, int64_t nq, int64_t qstride, int64_t D, uint32_t* qp) {
  for (int64_t r = 0; r < R; r++) to_pairs(q + row_of(r, nq) * qstride, D, qp + r * attn_pairs(D));
}

}  // namespace

// x (n, D) at stride -> kt, a key-major panel: 16 keys x 16 d pairs per register transpose.
void ops_attention_pack_keys_bf16_avx512(const float* x, int64_t n, int64_t stride, int64_t D, uint32_t* kt) {
  const int64_t keys = attn_panel_keys(n), np = attn_pairs(D);
  for (int64_t s0 = 0; s0 < keys; s0 += 16) {
    uint32_t* dst = kt + (s0 / KB) * np * KB + s0 % KB;
    for (int64_t p0 = 0; p0 < np; p0 += 16) {
      __m512i r[16];
      for (int64_t j = 0; j < 16; j++)
        r[j] = s0 + j < n ? pairs16(x + (s0 + j) * stride + 2 * p0, D - 2 * p0) : _mm512_setzero_si512();
      transpose16(r);
      for (int64_t i = 0; i < 16 && p0 + i < np; i++) _mm512_storeu_si512(dst + (p0 + i) * KB, r[i]);
    }
  }
}

// x (n, D) at stride -> xp, a row-pair panel over attn_panel_keys(n) keys (zero past n).
void ops_attention_pack_rows_bf16_avx512(const float* x, int64_t n, int64_t stride, int64_t D, uint32_t* xp) {
  const int64_t pairs = attn_row_pairs(attn_panel_keys(n));
  for (int64_t s = 0; s < pairs; s++) {
    const float* lo = x + 2 * s * stride;
    const float* hi = 2 * s + 1 < n ? lo + stride : nullptr;
    for (int64_t c = 0; c < D; c += 16) {
      const __m512i v = 2 * s < n ? interleave16(lo + c, hi ? hi + c : nullptr, D - c) : _mm512_setzero_si512();
      _mm512_mask_storeu_epi32(xp + s * D + c, mask16(D - c), v);
    }
  }
}

void ops_attention_tile_bf16_avx512(const float* q, const uint32_t* kt, const uint32_t* vp, float* out, int64_t nq,
                                    int64_t qstride, int64_t n, int64_t D, float scale, float* scratch) {
  // Keys of the last row; score columns computed (whole 16-key vectors); key pairs of P V.
  const int64_t keys = n + nq - 1, ld = attn_panel_keys(keys), cols = (keys + 15) / 16 * 16;
  const int64_t np = attn_pairs(D), kp = attn_row_pairs(keys);
  float* sc = scratch;                                       // (R, ld) scores
  uint32_t* qp = reinterpret_cast<uint32_t*>(sc + R * ld);  // (R, np) q pairs
  uint32_t* pp = qp + R * np;                                // (nq, ld / 2) numerator pairs
  float inv[R];
  query_pairs(q, nq, qstride, D, qp);
  scores(qp, np, kt, cols, scale, sc, ld);
  numerator_pairs(sc, ld, nq, n, keys, pp, inv);
  rows_times(pp, ld / 2, vp, kp, D, out, nq, qstride, inv);
}

void grad_attention_bwd_tile_bf16_avx512(const float* q, const uint32_t* kt, const uint32_t* vt, const uint32_t* kp,
                                         const float* dout, float* dq, float* dk, float* dv, int64_t nq,
                                         int64_t qstride, int64_t n, int64_t D, float scale, float* scratch) {
  const int64_t keys = n + nq - 1, ld = attn_panel_keys(keys), cols = (keys + 15) / 16 * 16;
  const int64_t np = attn_pairs(D), npr = attn_row_pairs(nq);
  float* p = scratch;                                        // (R, ld) scores, then P
  float* ds = p + R * ld;                                    // (R, ld) dP, then dS
  float* qc = ds + R * ld;                                   // (nq, D) q rows
  float* oc = qc + R * D;                                    // (nq, D) dout rows
  uint32_t* qp = reinterpret_cast<uint32_t*>(oc + R * D);   // (R, np) q pairs along d
  uint32_t* op = qp + R * np;                                // (R, np) dout pairs along d
  uint32_t* qt = op + R * np;                                // (npr, D) q row pairs
  uint32_t* ot = qt + HALF * D;                              // (npr, D) dout row pairs
  uint32_t* sp = ot + HALF * D;                              // (nq, ld / 2) dS pairs along keys
  uint32_t* wt = sp + R * (ld / 2);                          // (npr, ld) P, then dS, row pairs
  float inv[R];
  copy_rows(q, nq, qstride, D, qc);
  copy_rows(dout, nq, qstride, D, oc);
  query_pairs(qc, nq, D, D, qp);
  query_pairs(oc, nq, D, D, op);
  row_pairs(qc, D, nq, D, qt);
  row_pairs(oc, D, nq, D, ot);
  // P, rounded: it is both an operand (dV) and the softmax backward's input.
  scores(qp, np, kt, cols, scale, p, ld);
  softmax_rows(p, ld, nq, n, keys, false, inv);
  for (int64_t r = 0; r < nq; r++) scale_round_inplace(p + r * ld, n + r, inv[r]);
  row_pairs(p, ld, nq, keys, wt);
  add_outer(wt, ld, ot, npr, dv, keys, D);
  scores(op, np, vt, cols, 1.0f, ds, ld);
  softmax_bwd_rows(p, ds, ld, nq, n, keys, scale);
  for (int64_t r = 0; r < nq; r++) to_pairs(ds + r * ld, keys, sp + r * (ld / 2));
  rows_times(sp, ld / 2, kp, attn_row_pairs(keys), D, dq, nq, qstride, nullptr);
  row_pairs(ds, ld, nq, keys, wt);
  add_outer(wt, ld, qt, npr, dk, keys, D);
}
