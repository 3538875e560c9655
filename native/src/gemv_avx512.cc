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

const gemv_kernel gemv_kernel_f32_avx512 = {gemv_tile_f32_avx512, 4, 4};
const gemv_kernel gemv_kernel_bf16_avx512 = {gemv_tile_bf16_avx512, 4, 2};
