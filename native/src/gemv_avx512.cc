// AVX-512 GEMV tiles for the small-M path (gemv_driver.cc): mb <= 4 rows of x against 4
// rows of W, 16 f32 (or 32 bf16) of K per step, one zmm accumulator per (x row, W row).
// Each W vector is loaded once and used by every x row; x stays in L1/L2. Four W rows
// give four independent FMA chains for M=1, enough to outrun memory bandwidth. The K tail
// is a masked (zero-filled) load, so there is no scalar loop.
#include <immintrin.h>
#include "gemm.h"

namespace {

// Sum of the 16 lanes in a fixed order (256-bit halves, 128-bit quarters, then within 128
// bits). Full-mask forms with v as the pass-through: the plain intrinsics (and
// _mm512_reduce_add_ps) pass _mm512_undefined_ps(), on which GCC 12 warns (PR 105593).
inline float hsum(__m512 v) {
  const __mmask16 all = 0xffff;
  v = _mm512_add_ps(v, _mm512_mask_shuffle_f32x4(v, all, v, v, 0x4e));
  v = _mm512_add_ps(v, _mm512_mask_shuffle_f32x4(v, all, v, v, 0xb1));
  v = _mm512_add_ps(v, _mm512_mask_permute_ps(v, all, v, 0x4e));
  v = _mm512_add_ps(v, _mm512_mask_permute_ps(v, all, v, 0xb1));
  return _mm512_cvtss_f32(v);
}

// Pointers to the 4 W rows; rows nr..3 repeat row 0 (their sums are discarded).
#define GEMV_ROW_PTRS(T, w, nr, K) \
  const T* wr[GEMV_ROWS];          \
  for (int r = 0; r < GEMV_ROWS; r++) wr[r] = (w) + (r < (nr) ? r : 0) * (K);

// One K step: acc[m][r] += x_m * w_r; LOADW uses r, LOADX uses m.
#define GEMV_STEP_F32(LOADW, LOADX)                                                  \
  {                                                                                  \
    __m512 wv[GEMV_ROWS];                                                            \
    for (int r = 0; r < GEMV_ROWS; r++) wv[r] = LOADW;                               \
    for (int m = 0; m < MB; m++) {                                                   \
      const __m512 xv = LOADX;                                                       \
      for (int r = 0; r < GEMV_ROWS; r++) acc[m][r] = _mm512_fmadd_ps(xv, wv[r], acc[m][r]); \
    }                                                                                \
  }
// The same with vdpbf16ps on 32 bf16 (16 K pairs).
#define GEMV_STEP_BF16(LOADW, LOADX)                                                 \
  {                                                                                  \
    __m512bh wv[GEMV_ROWS];                                                          \
    for (int r = 0; r < GEMV_ROWS; r++) wv[r] = (__m512bh)LOADW;                     \
    for (int m = 0; m < MB; m++) {                                                   \
      const __m512bh xv = (__m512bh)LOADX;                                           \
      for (int r = 0; r < GEMV_ROWS; r++) acc[m][r] = _mm512_dpbf16_ps(acc[m][r], xv, wv[r]); \
    }                                                                                \
  }

// x (MB,K) f32, w (4,K) f32 -> out (MB,4); MB is a constant at each call site.
inline __attribute__((always_inline)) void tile_f32(int64_t K, const float* x, const int MB, const float* w, int nr,
                                                    float* out) {
  GEMV_ROW_PTRS(float, w, nr, K)
  __m512 acc[GEMV_MAX_MB][GEMV_ROWS];
  for (int m = 0; m < MB; m++)
    for (int r = 0; r < GEMV_ROWS; r++) acc[m][r] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) GEMV_STEP_F32(_mm512_loadu_ps(wr[r] + k), _mm512_loadu_ps(x + m * K + k))
  if (k < K) {
    const __mmask16 mask = (__mmask16)((1u << (K - k)) - 1);
    GEMV_STEP_F32(_mm512_maskz_loadu_ps(mask, wr[r] + k), _mm512_maskz_loadu_ps(mask, x + m * K + k))
  }
  for (int m = 0; m < MB; m++)
    for (int r = 0; r < GEMV_ROWS; r++) out[m * GEMV_ROWS + r] = hsum(acc[m][r]);
}

// x (MB,K) bf16, w (4,K) bf16 -> out (MB,4) with vdpbf16ps (K pairs into one f32 lane).
inline __attribute__((always_inline)) void tile_bf16(int64_t K, const uint16_t* x, const int MB, const uint16_t* w,
                                                     int nr, float* out) {
  GEMV_ROW_PTRS(uint16_t, w, nr, K)
  __m512 acc[GEMV_MAX_MB][GEMV_ROWS];
  for (int m = 0; m < MB; m++)
    for (int r = 0; r < GEMV_ROWS; r++) acc[m][r] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 32 <= K; k += 32) GEMV_STEP_BF16(_mm512_loadu_si512(wr[r] + k), _mm512_loadu_si512(x + m * K + k))
  if (k < K) {
    const __mmask32 mask = (__mmask32)((1u << (K - k)) - 1);
    GEMV_STEP_BF16(_mm512_maskz_loadu_epi16(mask, wr[r] + k), _mm512_maskz_loadu_epi16(mask, x + m * K + k))
  }
  for (int m = 0; m < MB; m++)
    for (int r = 0; r < GEMV_ROWS; r++) out[m * GEMV_ROWS + r] = hsum(acc[m][r]);
}

// The 16 lane sums of acc[0..15], each exactly hsum(acc[r]), into out[0..15]: the same
// pairing levels (lanes i and i^8, i^4, i^2, i^1), applied to 16 vectors at once by
// moving halves, quarters and pairs of lanes between them, so that each add is one that
// hsum makes, with its operands in hsum's order.
inline __attribute__((always_inline)) void hsum16(const __m512* acc, float* out) {
  // Full-mask forms with a as the pass-through, as in hsum (GCC 12 PR 105593).
  const __mmask16 all = 0xffff;
  auto quarters = [all](__m512 a, __m512 b, int imm) {
    switch (imm) {  // the immediate must be a constant
      case 0x44: return _mm512_mask_shuffle_f32x4(a, all, a, b, 0x44);
      case 0xee: return _mm512_mask_shuffle_f32x4(a, all, a, b, 0xee);
      case 0x88: return _mm512_mask_shuffle_f32x4(a, all, a, b, 0x88);
      default: return _mm512_mask_shuffle_f32x4(a, all, a, b, 0xdd);
    }
  };
  auto lanes = [all](__m512 a, __m512 b, int imm) {
    switch (imm) {
      case 0x44: return _mm512_mask_shuffle_ps(a, all, a, b, 0x44);
      case 0xee: return _mm512_mask_shuffle_ps(a, all, a, b, 0xee);
      case 0x88: return _mm512_mask_shuffle_ps(a, all, a, b, 0x88);
      default: return _mm512_mask_shuffle_ps(a, all, a, b, 0xdd);
    }
  };
  __m512 s1[8], s2[4], s3[2];
  // rows 2p (lanes 0-7) and 2p+1 (lanes 8-15): v[i] + v[i+8]
  for (int p = 0; p < 8; p++) {
    const __m512 a = acc[2 * p], b = acc[2 * p + 1];
    s1[p] = _mm512_add_ps(quarters(a, b, 0x44), quarters(a, b, 0xee));
  }
  // quarter j of s2[t] holds row 4t+j: w[i] + w[i+4]
  for (int t = 0; t < 4; t++) {
    const __m512 c = s1[2 * t], d = s1[2 * t + 1];
    s2[t] = _mm512_add_ps(quarters(c, d, 0x88), quarters(c, d, 0xdd));
  }
  // quarter j of s3[u]: rows 8u+j (lanes 0,1) and 8u+4+j (lanes 2,3): x[i] + x[i+2]
  for (int u = 0; u < 2; u++) {
    const __m512 e = s2[2 * u], f = s2[2 * u + 1];
    s3[u] = _mm512_add_ps(lanes(e, f, 0x44), lanes(e, f, 0xee));
  }
  // lane 4j+k holds row 4k+j: y[0] + y[1]; then rows back in order
  const __m512 s4 = _mm512_add_ps(lanes(s3[0], s3[1], 0x88), lanes(s3[0], s3[1], 0xdd));
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  _mm512_storeu_ps(out, _mm512_mask_permutexvar_ps(s4, all, order, s4));
}

// Pointers to 16 W rows; rows nr..15 repeat row 0 (their sums are discarded).
#define GEMV_WIDE_ROW_PTRS(T, w, nr, K) \
  const T* wr[GEMV_WIDE_ROWS];          \
  for (int r = 0; r < GEMV_WIDE_ROWS; r++) wr[r] = (w) + (r < (nr) ? r : 0) * (K);

// x (mb,K) f32, w (nr,K) f32 -> out (mb,16): tile_f32's chains for 16 W rows, one x row at a time
void gemv_wide_f32_avx512(int64_t K, const void* x_, int mb, const void* w_, int nr, float* out) {
  const float *x = (const float*)x_, *w = (const float*)w_;
  GEMV_WIDE_ROW_PTRS(float, w, nr, K)
  for (int m = 0; m < mb; m++, x += K) {
    __m512 acc[GEMV_WIDE_ROWS];
    for (int r = 0; r < GEMV_WIDE_ROWS; r++) acc[r] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
      const __m512 xv = _mm512_loadu_ps(x + k);
      for (int r = 0; r < GEMV_WIDE_ROWS; r++) acc[r] = _mm512_fmadd_ps(xv, _mm512_loadu_ps(wr[r] + k), acc[r]);
    }
    if (k < K) {
      const __mmask16 mask = (__mmask16)((1u << (K - k)) - 1);
      const __m512 xv = _mm512_maskz_loadu_ps(mask, x + k);
      for (int r = 0; r < GEMV_WIDE_ROWS; r++) acc[r] = _mm512_fmadd_ps(xv, _mm512_maskz_loadu_ps(mask, wr[r] + k), acc[r]);
    }
    hsum16(acc, out + m * GEMV_WIDE_ROWS);
  }
}

// x (mb,K) bf16, w (nr,K) bf16 -> out (mb,16): tile_bf16's chains for 16 W rows
void gemv_wide_bf16_avx512(int64_t K, const void* x_, int mb, const void* w_, int nr, float* out) {
  const uint16_t *x = (const uint16_t*)x_, *w = (const uint16_t*)w_;
  GEMV_WIDE_ROW_PTRS(uint16_t, w, nr, K)
  for (int m = 0; m < mb; m++, x += K) {
    __m512 acc[GEMV_WIDE_ROWS];
    for (int r = 0; r < GEMV_WIDE_ROWS; r++) acc[r] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 32 <= K; k += 32) {
      const __m512bh xv = (__m512bh)_mm512_loadu_si512(x + k);
      for (int r = 0; r < GEMV_WIDE_ROWS; r++) acc[r] = _mm512_dpbf16_ps(acc[r], xv, (__m512bh)_mm512_loadu_si512(wr[r] + k));
    }
    if (k < K) {
      const __mmask32 mask = (__mmask32)((1u << (K - k)) - 1);
      const __m512bh xv = (__m512bh)_mm512_maskz_loadu_epi16(mask, x + k);
      for (int r = 0; r < GEMV_WIDE_ROWS; r++)
        acc[r] = _mm512_dpbf16_ps(acc[r], xv, (__m512bh)_mm512_maskz_loadu_epi16(mask, wr[r] + k));
    }
    hsum16(acc, out + m * GEMV_WIDE_ROWS);
  }
}

// x (mb,K) f32, w (nr,K) f32 -> out (mb,4)
void gemv_tile_f32_avx512(int64_t K, const void* x, int mb, const void* w, int nr, float* out) {
  const float *xf = (const float*)x, *wf = (const float*)w;
  switch (mb) {
    case 1: tile_f32(K, xf, 1, wf, nr, out); break;
    case 2: tile_f32(K, xf, 2, wf, nr, out); break;
    case 3: tile_f32(K, xf, 3, wf, nr, out); break;
    default: tile_f32(K, xf, 4, wf, nr, out); break;
  }
}

// x (mb,K) bf16, w (nr,K) bf16 -> out (mb,4)
void gemv_tile_bf16_avx512(int64_t K, const void* x, int mb, const void* w, int nr, float* out) {
  const uint16_t *xh = (const uint16_t*)x, *wh = (const uint16_t*)w;
  switch (mb) {
    case 1: tile_bf16(K, xh, 1, wh, nr, out); break;
    case 2: tile_bf16(K, xh, 2, wh, nr, out); break;
    case 3: tile_bf16(K, xh, 3, wh, nr, out); break;
    default: tile_bf16(K, xh, 4, wh, nr, out); break;
  }
}

}  // namespace

const gemv_kernel gemv_kernel_f32_avx512 = {gemv_tile_f32_avx512, 4, 4, gemv_wide_f32_avx512};
const gemv_kernel gemv_kernel_bf16_avx512 = {gemv_tile_bf16_avx512, 4, 2, gemv_wide_bf16_avx512};
