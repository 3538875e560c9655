// Small-M (decode) products in the linear-layer orientation: y (M,N) [+]= x (M,K) W(N,K)^T
// [+ bias] for M <= a few rows, without packing. The blocked driver (gemm_driver.cc) packs
// a panel of W on every call, which for one token costs as much as the product; here each
// W row is read once, straight from memory, and dotted with the M rows of x (L1/L2
// resident), so the product runs at memory bandwidth.
//
// Threads take whole groups of GEMV_ROWS (or GEMV_WIDE_ROWS) rows of W under a static schedule and never
// split K, so each y element is one tile's dot product, whatever the thread count.
// Compiled without ISA flags: the arithmetic is in the tile kernels (gemv_*.cc).
#include <omp.h>
#include <cstdlib>
#include "gemm.h"
#include "pool.h"
#include "quant.h"
#include "parallel.h"

namespace {

// Rows of W up to this many bytes long take the wide tile for any M (a rank-16 LoRA B is
// 64 bytes): there the 4-row tile spends most of its time in horizontal sums.
constexpr int64_t GEMV_WIDE_MAX_K_BYTES = 1024;

// y = (accumulate ? y : 0) [+ bias] + s, in the blocked driver's order (bias into C
// first, then the product added) so both paths round alike.
inline float finish(float y, float s, const float* bias, int64_t j, bool accumulate) {
  if (!bias && !accumulate) return s;
  float base = accumulate ? y : 0.0f;
  if (bias) base += bias[j];
  return base + s;
}

// B's rows [j0, j0+n) (those of the next row group), on their way while this group's W
// rows stream: the B of a decoded layer comes from memory, a few lines per group.
inline void prefetch_low_rank(const gemv_lowrank& lr, int64_t N, int64_t j0, int64_t n) {
  if (j0 >= N) return;
  const char* p = (const char*)(lr.b + j0 * lr.R);
  const int64_t bytes = (N - j0 < n ? N - j0 : n) * lr.R * 4;
  for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(p + o);
}

// Rows [j0, j0+nr) of y (M,N) += h B^T over rank lr.R, in tiles of lr.g (any tile gives
// the same sums).
void add_low_rank(const gemv_lowrank& lr, int64_t M, int64_t N, int64_t j0, int64_t nr, float* y) {
  const gemv_kernel& g = *lr.g;
  const gemv_tile_fn tile = g.wide ? g.wide : g.tile;
  const int64_t rows = g.wide ? GEMV_WIDE_ROWS : GEMV_ROWS;
  float out[GEMV_MAX_MB * GEMV_WIDE_ROWS];
  for (int64_t i0 = 0; i0 < nr; i0 += rows) {
    const int64_t n = nr - i0 < rows ? nr - i0 : rows;
    for (int64_t m0 = 0; m0 < M; m0 += g.mb) {
      const int64_t mb = M - m0 < g.mb ? M - m0 : g.mb;
      tile(lr.R, lr.h + m0 * lr.R, (int)mb, lr.b + (j0 + i0) * lr.R, (int)n, out);
      for (int64_t m = 0; m < mb; m++) {
        float* row = y + (m0 + m) * N + j0 + i0;
        for (int64_t r = 0; r < n; r++) row[r] = finish(row[r], out[m * rows + r], nullptr, 0, true);
      }
    }
  }
}

}  // namespace

ft_status gemv_rows(const gemv_kernel& g, const void* x, const void* w, const float* bias, float* y, int64_t M,
                    int64_t N, int64_t K, bool accumulate, int64_t parallel_min, const gemv_lowrank* lr) {
  if (M == 0 || N == 0) return FT_OK;
  const int64_t es = g.elem_bytes;
  const bool parallel = M * N * K >= parallel_min;
  // The wide tile where horizontal sums weigh (short K) or one row of x reads W once
  // anyway (16 independent chains instead of 4), unless a parallel product has too few
  // rows to split; otherwise the 4-row tile, whose W loads serve up to 4 rows of x.
  // Either gives the same bits.
  const bool wide = g.wide && (M == 1 || K * es <= GEMV_WIDE_MAX_K_BYTES) && (!parallel || N >= 2 * GEMV_WIDE_ROWS);
  const gemv_tile_fn tile = wide ? g.wide : g.tile;
  const int64_t rows = wide ? GEMV_WIDE_ROWS : GEMV_ROWS, groups = (N + rows - 1) / rows;
  const char* xb = (const char*)x;
  const char* wb = (const char*)w;
  ft_parallel_for(groups, parallel, [&](int64_t grp) {
    const int64_t j0 = grp * rows, nr = N - j0 < rows ? N - j0 : rows;
    if (lr) prefetch_low_rank(*lr, N, j0 + rows, rows);
    float out[GEMV_MAX_MB * GEMV_WIDE_ROWS];
    for (int64_t m0 = 0; m0 < M; m0 += g.mb) {
      const int64_t mb = M - m0 < g.mb ? M - m0 : g.mb;
      tile(K, xb + m0 * K * es, (int)mb, wb + j0 * K * es, (int)nr, out);
      for (int64_t m = 0; m < mb; m++) {
        float* row = y + (m0 + m) * N;
        for (int64_t r = 0; r < nr; r++) row[j0 + r] = finish(row[j0 + r], out[m * rows + r], bias, j0 + r, accumulate);
      }
    }
    if (lr) add_low_rank(*lr, M, N, j0, nr, y);
  });
  return FT_OK;
}

ft_status gemv_rows_q4(const gemv_kernel& g, q4_gemv_fn fused, const void* x, const q4_weight& w, q4_decode_fn dec,
                       int32_t kind, const float* bias, float* y, int64_t M) {
  const int64_t N = w.N, K = w.K;
  if (M == 0 || N == 0) return FT_OK;
  if (K % 32 != 0) fused = nullptr;
  const int64_t groups = (N + GEMV_ROWS - 1) / GEMV_ROWS, es = g.elem_bytes;
  const int T = M * N * K >= GEMV_PARALLEL_MIN_WORK ? omp_get_max_threads() : 1;
  // One decoded group of rows per thread (GEMV_ROWS x K values, L2-resident for K <= 16k).
  const size_t stride = (size_t)((GEMV_ROWS * K * es + 63) / 64 * 64 + 64);
  const PoolScratch scratch(stride * T);
  char* bufs = scratch.get();
  if (!bufs) return FT_ERR_ALLOC;
  const char* xb = (const char*)x;
#pragma omp parallel num_threads(T)
  {
    char* buf = bufs + stride * omp_get_thread_num();
#pragma omp for schedule(static)
    for (int64_t grp = 0; grp < groups; grp++) {
      const int64_t j0 = grp * GEMV_ROWS, nr = N - j0 < GEMV_ROWS ? N - j0 : GEMV_ROWS;
      if (!fused) dec(w, j0 * K, nr * K, kind, buf);
      float out[GEMV_MAX_MB * GEMV_ROWS];
      for (int64_t m0 = 0; m0 < M; m0 += g.mb) {
        const int64_t mb = M - m0 < g.mb ? M - m0 : g.mb;
        if (fused) fused(w, j0, (int)nr, xb + m0 * K * es, (int)mb, out);
        else g.tile(K, xb + m0 * K * es, (int)mb, buf, (int)nr, out);
        for (int64_t m = 0; m < mb; m++) {
          float* row = y + (m0 + m) * N;
          for (int64_t r = 0; r < nr; r++) row[j0 + r] = finish(0.0f, out[m * GEMV_ROWS + r], bias, j0 + r, false);
        }
      }
    }
  }
  return FT_OK;
}
