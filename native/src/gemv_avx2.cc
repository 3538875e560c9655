// AVX2 + FMA GEMV tiles for the small-M path (gemv_driver.cc): mb <= 2 rows of x against 4
// rows of W, 8 lanes of K per step, one ymm accumulator per (x row, W row) (8 of the 16
// ymm registers; mb = 4 would spill). bf16 x and W widen to f32 on load (exact), which is
// also the bf16 path of AVX-512 CPUs without avx512_bf16. The K tail goes through a
// zero-padded copy so it runs the same vector code.
#include <cstring>
#include "gemm.h"
#include "simd_avx2.h"

namespace {

constexpr int MB = 2;

// 8 bf16 at p -> 8 f32, exact.
inline __m256 load_bf16(const uint16_t* p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)p)), 16));
}

// One K step of 8: acc[m][r] += x[m] * w[r] for the mb x rows (mb a constant at each call).
#define GEMV_STEP_AVX2(LOAD, xp, xs, wp, ws, mb, acc)                                  \
  {                                                                                     \
    __m256 wv[GEMV_ROWS];                                                               \
    for (int r = 0; r < GEMV_ROWS; r++) wv[r] = LOAD((wp)[r] + (ws));                   \
    for (int m = 0; m < (mb); m++) {                                                    \
      const __m256 xv = LOAD((xp)[m] + (xs));                                           \
      for (int r = 0; r < GEMV_ROWS; r++) acc[m][r] = _mm256_fmadd_ps(xv, wv[r], acc[m][r]); \
    }                                                                                   \
  }

// x (mb,K) f32, w (4,K) f32 -> out (mb,4); mb a constant at each call site.
inline __attribute__((always_inline)) void tile_f32(int64_t K, const float* x, const int mb, const float* w, int nr,
                                                    float* out) {
  const float* xr[MB];
  const float* wr[GEMV_ROWS];
  for (int m = 0; m < mb; m++) xr[m] = x + m * K;
  for (int r = 0; r < GEMV_ROWS; r++) wr[r] = w + (r < nr ? r : 0) * K;  // rows nr.. repeat row 0
  __m256 acc[MB][GEMV_ROWS];
  for (int m = 0; m < mb; m++)
    for (int r = 0; r < GEMV_ROWS; r++) acc[m][r] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) GEMV_STEP_AVX2(_mm256_loadu_ps, xr, k, wr, k, mb, acc)
  if (k < K) {
    alignas(32) float xt[MB][8] = {}, wt[GEMV_ROWS][8] = {};
    const float* xp[MB];
    const float* wp[GEMV_ROWS];
    for (int m = 0; m < mb; m++) std::memcpy(xt[m], xr[m] + k, (size_t)(K - k) * 4), xp[m] = xt[m];
    for (int r = 0; r < GEMV_ROWS; r++) std::memcpy(wt[r], wr[r] + k, (size_t)(K - k) * 4), wp[r] = wt[r];
    GEMV_STEP_AVX2(_mm256_load_ps, xp, 0, wp, 0, mb, acc)
  }
  for (int m = 0; m < mb; m++)
    for (int r = 0; r < GEMV_ROWS; r++) out[m * GEMV_ROWS + r] = hsum(acc[m][r]);
}

// x (mb,K) bf16, w (4,K) bf16 -> out (mb,4), widened to f32.
inline __attribute__((always_inline)) void tile_bf16(int64_t K, const uint16_t* x, const int mb, const uint16_t* w,
                                                     int nr, float* out) {
  const uint16_t* xr[MB];
  const uint16_t* wr[GEMV_ROWS];
  for (int m = 0; m < mb; m++) xr[m] = x + m * K;
  for (int r = 0; r < GEMV_ROWS; r++) wr[r] = w + (r < nr ? r : 0) * K;
  __m256 acc[MB][GEMV_ROWS];
  for (int m = 0; m < mb; m++)
    for (int r = 0; r < GEMV_ROWS; r++) acc[m][r] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) GEMV_STEP_AVX2(load_bf16, xr, k, wr, k, mb, acc)
  if (k < K) {
    uint16_t xt[MB][8] = {}, wt[GEMV_ROWS][8] = {};
    const uint16_t* xp[MB];
    const uint16_t* wp[GEMV_ROWS];
    for (int m = 0; m < mb; m++) std::memcpy(xt[m], xr[m] + k, (size_t)(K - k) * 2), xp[m] = xt[m];
    for (int r = 0; r < GEMV_ROWS; r++) std::memcpy(wt[r], wr[r] + k, (size_t)(K - k) * 2), wp[r] = wt[r];
    GEMV_STEP_AVX2(load_bf16, xp, 0, wp, 0, mb, acc)
  }
  for (int m = 0; m < mb; m++)
    for (int r = 0; r < GEMV_ROWS; r++) out[m * GEMV_ROWS + r] = hsum(acc[m][r]);
}

// x (mb,K) f32, w (nr,K) f32 -> out (mb,4)
void gemv_tile_f32_avx2(int64_t K, const void* x, int mb, const void* w, int nr, float* out) {
  if (mb == 1) tile_f32(K, (const float*)x, 1, (const float*)w, nr, out);
  else tile_f32(K, (const float*)x, 2, (const float*)w, nr, out);
}

// x (mb,K) bf16, w (nr,K) bf16 -> out (mb,4)
void gemv_tile_bf16_avx2(int64_t K, const void* x, int mb, const void* w, int nr, float* out) {
  if (mb == 1) tile_bf16(K, (const uint16_t*)x, 1, (const uint16_t*)w, nr, out);
  else tile_bf16(K, (const uint16_t*)x, 2, (const uint16_t*)w, nr, out);
}

}  // namespace

const gemv_kernel gemv_kernel_f32_avx2 = {gemv_tile_f32_avx2, MB, 4, nullptr};
const gemv_kernel gemv_kernel_bf16_avx2 = {gemv_tile_bf16_avx2, MB, 2, nullptr};
