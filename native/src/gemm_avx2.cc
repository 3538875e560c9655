// AVX2 + FMA GEMM micro-kernel for the blocked driver (gemm_driver.cc): a 6 x 16 register
// tile (12 ymm accumulators, 2 B vectors, 1 broadcast), the classic Haswell shape
// (BLIS haswell sgemm uses 6 x 16 as well).
#include <immintrin.h>
#include "gemm.h"

namespace {

constexpr int MR = 6, NR = 16;

// ap (kc,6) f32, bp (kc,16) f32 -> c (6,16)
void gemm_micro_f32_avx2(int64_t kc, const void* ap_, const void* bp_, float* c, int64_t ldc, bool beta0) {
  const float* ap = (const float*)ap_;
  const float* bp = (const float*)bp_;
  __m256 acc[MR][2];
#pragma GCC unroll 6
  for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; k++) {
    const __m256 b0 = _mm256_load_ps(bp), b1 = _mm256_load_ps(bp + 8);
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
      const __m256 x = _mm256_broadcast_ss(ap + i);
      acc[i][0] = _mm256_fmadd_ps(x, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(x, b1, acc[i][1]);
    }
    ap += MR;
    bp += NR;
  }
  for (int i = 0; i < MR; i++) {
    float* row = c + i * ldc;
    if (beta0) {
      _mm256_storeu_ps(row, acc[i][0]);
      _mm256_storeu_ps(row + 8, acc[i][1]);
    } else {
      _mm256_storeu_ps(row, _mm256_add_ps(_mm256_loadu_ps(row), acc[i][0]));
      _mm256_storeu_ps(row + 8, _mm256_add_ps(_mm256_loadu_ps(row + 8), acc[i][1]));
    }
  }
}

}  // namespace

// KC 512: as for AVX-512 (gemm_avx512.cc), a deep K slice beats an L1-resident B panel.
const gemm_kernel gemm_kernel_f32_avx2 = {gemm_micro_f32_avx2, MR, NR, 512, 6 * 48, 16 * 128, 1, nullptr, nullptr, nullptr};
