// Scalar GEMV tile: the specification of the SIMD tiles (gemv_avx2.cc, gemv_avx512.cc)
// and the small-M path of the scalar ISA. Each dot product is summed in K order, so
// through gemv_rows it gives exactly gemm_f32_ref / gemm_bf16_ref.
#include "gemm.h"

namespace {

// x (mb,K) f32, w (nr,K) f32 -> out (mb,GEMV_ROWS), sums in K order
void gemv_tile_f32_ref(int64_t K, const void* x_, int mb, const void* w_, int nr, float* out) {
  const float* x = (const float*)x_;
  const float* w = (const float*)w_;
  for (int m = 0; m < mb; m++) {
    for (int r = 0; r < nr; r++) {
      float s = 0.0f;
      for (int64_t k = 0; k < K; k++) s += x[m * K + k] * w[r * K + k];
      out[m * GEMV_ROWS + r] = s;
    }
  }
}

// x (mb,K) bf16, w (nr,K) bf16 -> out (mb,GEMV_ROWS); products exact in f32, sums in K order
void gemv_tile_bf16_ref(int64_t K, const void* x_, int mb, const void* w_, int nr, float* out) {
  const uint16_t* x = (const uint16_t*)x_;
  const uint16_t* w = (const uint16_t*)w_;
  for (int m = 0; m < mb; m++) {
    for (int r = 0; r < nr; r++) {
      float s = 0.0f;
      for (int64_t k = 0; k < K; k++) s += ft_bf16_to_f32(x[m * K + k]) * ft_bf16_to_f32(w[r * K + k]);
      out[m * GEMV_ROWS + r] = s;
    }
  }
}

}  // namespace

const gemv_kernel gemv_kernel_f32_ref = {gemv_tile_f32_ref, GEMV_MAX_MB, 4, nullptr};
const gemv_kernel gemv_kernel_bf16_ref = {gemv_tile_bf16_ref, GEMV_MAX_MB, 2, nullptr};
