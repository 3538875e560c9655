// AVX-512 GEMM micro-kernels for the blocked driver (gemm_driver.cc).
//
// f32: a 14 x 32 register tile, 28 zmm accumulators + 2 B vectors; each A value is an
// embedded-broadcast operand of the FMA, so a k step is 2 vector loads + 28 FMAs. Two FMA
// pipes with 4-cycle latency need >= 8 independent accumulators; 28 hide it with room.
// bf16: the same tile with vdpbf16ps, which multiplies adjacent bf16 pairs along K and adds
// both products into one f32 lane, so the packers store K in pairs (see gemm.h).
#include <immintrin.h>
#include "gemm.h"

namespace {

constexpr int MR = 14, NR = 32;

// Fetches the c (14,32) tile into L1 while the k loop runs: without it the final
// load-add-store of C stalled for ~19% of the kernel's time (perf annotate, 2048^3 NN).
#define PREFETCH_C_TILE(c, ldc)                                               \
  for (int i = 0; i < MR; i++) {                                              \
    _mm_prefetch((const char*)((c) + i * (ldc)), _MM_HINT_T0);                \
    _mm_prefetch((const char*)((c) + i * (ldc) + 16), _MM_HINT_T0);           \
  }

// Adds (or stores, when beta0) the 14 x 32 accumulator tile into c (14,32), row stride ldc.
// A macro rather than a function so the accumulators stay in registers (GCC spilled
// them to the stack when the array was passed by reference).
#define STORE_C_TILE(acc, c, ldc, beta0)                                                         \
  _Pragma("GCC unroll 14") for (int i = 0; i < MR; i++) {                                        \
    float* row = (c) + i * (ldc);                                                                \
    if (beta0) {                                                                                 \
      _mm512_storeu_ps(row, acc[i][0]);                                                          \
      _mm512_storeu_ps(row + 16, acc[i][1]);                                                     \
    } else {                                                                                     \
      _mm512_storeu_ps(row, _mm512_add_ps(_mm512_loadu_ps(row), acc[i][0]));                     \
      _mm512_storeu_ps(row + 16, _mm512_add_ps(_mm512_loadu_ps(row + 16), acc[i][1]));           \
    }                                                                                            \
  }

// ap (kc,14) f32, bp (kc,32) f32 -> c (14,32)
void gemm_micro_f32_avx512(int64_t kc, const void* ap_, const void* bp_, float* c, int64_t ldc, bool beta0) {
  const float* ap = (const float*)ap_;
  const float* bp = (const float*)bp_;
  __m512 acc[MR][2];
#pragma GCC unroll 14
  for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  PREFETCH_C_TILE(c, ldc)
  for (int64_t k = 0; k < kc; k++) {
    const __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16);
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
      const __m512 x = _mm512_set1_ps(ap[i]);
      acc[i][0] = _mm512_fmadd_ps(x, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(x, b1, acc[i][1]);
    }
    ap += MR;
    bp += NR;
  }
  STORE_C_TILE(acc, c, ldc, beta0);
}

// ap (kc/2,14,2) bf16, bp (kc/2,32,2) bf16 -> c (14,32); kc even
void gemm_micro_bf16_avx512(int64_t kc, const void* ap_, const void* bp_, float* c, int64_t ldc, bool beta0) {
  const int32_t* ap = (const int32_t*)ap_;  // one bf16 pair per row and k pair
  const __m512i* bp = (const __m512i*)bp_;
  __m512 acc[MR][2];
#pragma GCC unroll 14
  for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  PREFETCH_C_TILE(c, ldc)
  for (int64_t k = 0; k < kc; k += 2) {
    const __m512bh b0 = (__m512bh)_mm512_load_si512(bp), b1 = (__m512bh)_mm512_load_si512(bp + 1);
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
      const __m512bh x = (__m512bh)_mm512_set1_epi32(ap[i]);
      acc[i][0] = _mm512_dpbf16_ps(acc[i][0], x, b0);
      acc[i][1] = _mm512_dpbf16_ps(acc[i][1], x, b1);
    }
    ap += MR;
    bp += 2;
  }
  STORE_C_TILE(acc, c, ldc, beta0);
}

}  // namespace

// Cache blocks, measured on Zen 5 (48 KiB L1d, 1 MiB L2 per core; bench/RESULTS.md):
// a deep KC pays most, since each K slice reloads and stores the C tile (f32 KC 256 ->
// 768 took 2048^3 from 190 to 210 GFLOP/s on one core). The KC x 32 B micro-panel then
// lives in L2 next to the MC x KC block of A; L2 bandwidth covers both at this tile size.
const gemm_kernel gemm_kernel_f32_avx512 = {gemm_micro_f32_avx512, MR, NR, 768, 14 * 24, 32 * 64, 1};
const gemm_kernel gemm_kernel_bf16_avx512 = {gemm_micro_bf16_avx512, MR, NR, 1024, 14 * 24, 32 * 64, 2};
