// Checked entry points of the backward ops: every dim is validated and every buffer size
// compared with what the dims require before any memory is touched (embedding backward
// and cross-entropy also range-check every id / label first); then the kernels of
// ft_active_isa() run under OpenMP static schedules, each work item owning its outputs
// (see grad.h for the fixed reduction orders), so results do not depend on thread count.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <omp.h>
#include "attention.h"
#include "dispatch.h"
#include "grad.h"
#include "ops.h"
#include "parallel.h"
#include "pool.h"

namespace {

// Work below this many elements runs on one thread (thread start-up costs more).
constexpr int64_t PAR_MIN = 1 << 15;
// Element-wise ops: elements per OpenMP work item.
constexpr int64_t BLOCK = 4096;
// Column-split ops (sum_rows, rmsnorm dw, embedding backward): columns per work item.
constexpr int64_t COLS = 64;

int64_t blocks_of(int64_t n, int64_t block) { return (n + block - 1) / block; }
int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

typedef void (*pack_fn)(const float* k, int64_t n, int64_t stride, int64_t D, float* kt);
typedef void (*bwd_tile_fn)(const float* q, const float* kt, const float* vt, const float* k, const float* dout,
                            float* dq, float* dk, float* dv, int64_t nq, int64_t qstride, int64_t n, int64_t stride,
                            int64_t D, float scale, float* scratch);

// The f32 backward tiles' panels: keys and values packed in (D, ATTN_KEYS) blocks, keys
// gathered contiguous too.
struct F32BwdTiles {
  bwd_tile_fn tile;
  pack_fn pack;
  int64_t panel(int64_t S, int64_t D) const { return D * attn_panel_keys(S); }
  int64_t scratch(int64_t S, int64_t D) const { return attn_bwd_scratch(S, D); }
  void pack_kv(const float* k, int64_t kstride, const float* v, int64_t vstride, int64_t S, int64_t D, float* kt,
               float* vt, float* kc) const {
    pack(k, S, kstride, D, kt);
    pack(v, S, vstride, D, vt);
    ops_attention_gather_f32_ref(k, S, kstride, D, kc);
  }
  void run(const float* q, const float* kt, const float* vt, const float* kc, const float* dout, float* dq, float* dk,
           float* dv, int64_t nq, int64_t qstride, int64_t n, int64_t D, float scale, float* tmp) const {
    tile(q, kt, vt, kc, dout, dq, dk, dv, nq, qstride, n, D, D, scale, tmp);
  }
};

// The bf16 backward tiles' panels (u32 bf16 pairs in float-sized slots): keys and values
// key-major, keys as row pairs too.
struct Bf16BwdTiles {
  int64_t panel(int64_t S, int64_t D) const {
    return std::max({attn_bf16_key_panel(S, D), attn_bf16_row_panel(S, D), D * attn_panel_keys(S)});
  }
  int64_t scratch(int64_t S, int64_t D) const { return attn_bf16_bwd_scratch(S, D); }
  void pack_kv(const float* k, int64_t kstride, const float* v, int64_t vstride, int64_t S, int64_t D, float* kt,
               float* vt, float* kp) const {
    ops_attention_pack_keys_bf16_avx512(k, S, kstride, D, attn_u32(kt));
    ops_attention_pack_keys_bf16_avx512(v, S, vstride, D, attn_u32(vt));
    ops_attention_pack_rows_bf16_avx512(k, S, kstride, D, attn_u32(kp));
  }
  void run(const float* q, const float* kt, const float* vt, const float* kp, const float* dout, float* dq, float* dk,
           float* dv, int64_t nq, int64_t qstride, int64_t n, int64_t D, float scale, float* tmp) const {
    grad_attention_bwd_tile_bf16_avx512(q, attn_u32(kt), attn_u32(vt), attn_u32(kp), dout, dq, dk, dv, nq, qstride, n, D,
                                        scale, tmp);
  }
};

// Tiled attention backward (attention.h). One work item per (b, kv head), as the row
// kernels: it packs that head's keys and values once, then runs the tiles of its query
// heads and row blocks in order, so it alone writes its dk / dv slice, each dk / dv row
// adding heads, then row blocks, then rows in a fixed order (any thread count).
template <class Tiles>
ft_status attention_bwd_tiled(const Tiles& tiles, const float* q, const float* k, const float* v, const float* dout,
                              float* dq, float* dk, float* dv, int64_t B, int64_t T, int64_t H, int64_t Hkv,
                              int64_t D, int64_t Smax, int64_t S, float scale, const AttnRope* rope) {
  const int threads = omp_get_max_threads();
  // Per thread: three key / value panels; dk, dv as contiguous (S, D) rows; tile scratch;
  // with rope, krot (the rotated keys, then dk rotated back), and qrot, drow, dqrow for a tile.
  const int64_t panel = tiles.panel(S, D), work = 5 * panel + tiles.scratch(S, D);
  const int64_t per = work + (rope ? (S + 3 * ATTN_ROWS) * D : 0);
  size_t ns;
  if (!ft_count2(threads, per, &ns)) return FT_ERR_ARG;
  const PoolScratch pool(ns * sizeof(float));  // cached: no fresh pages per call
  float* scratch = reinterpret_cast<float*>(pool.get());
  if (scratch == nullptr) return FT_ERR_ALLOC;
  const int64_t group = H / Hkv, stride = Hkv * D;
#pragma omp parallel num_threads(threads)
  {
    float* kt = scratch + (int64_t)omp_get_thread_num() * per;
    float* vt = kt + panel;
    float* kc = vt + panel;
    float* dkc = kc + panel;
    float* dvc = dkc + panel;
    float* tmp = dvc + panel;
    float* krot = kt + work;
    float* qrot = krot + S * D;
    float* drow = qrot + ATTN_ROWS * D;
    float* dqrow = drow + ATTN_ROWS * D;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < B * Hkv; i++) {
      const int64_t b = i / Hkv, g = i % Hkv;
      const int64_t kv = (b * Smax * Hkv + g) * D;
      if (rope) {
        rope->rows(k + kv, stride, 0, S, krot, D, false);
        tiles.pack_kv(krot, D, v + kv, stride, S, D, kt, vt, kc);
      } else {
        tiles.pack_kv(k + kv, stride, v + kv, stride, S, D, kt, vt, kc);
      }
      std::memset(dkc, 0, (size_t)(S * D) * sizeof(float));
      std::memset(dvc, 0, (size_t)(S * D) * sizeof(float));
      for (int64_t h = g * group; h < (g + 1) * group; h++) {
        for (int64_t t0 = 0; t0 < T; t0 += ATTN_ROWS) {
          const int64_t r = ((b * T + t0) * H + h) * D, nq = attn_tile_rows(T, t0);
          // the next tile's q and dout rows: this head's next rows, or the group's next head
          const int64_t nt0 = t0 + ATTN_ROWS < T ? t0 + ATTN_ROWS : 0, nh = t0 + ATTN_ROWS < T ? h : h + 1;
          if (nh < (g + 1) * group) {
            const int64_t nr = ((b * T + nt0) * H + nh) * D, nn = attn_tile_rows(T, nt0);
            attn_prefetch_rows(q + nr, nn, H * D, D);
            attn_prefetch_rows(dout + nr, nn, H * D, D);
          }
          if (!rope) {
            tiles.run(q + r, kt, vt, kc, dout + r, dq + r, dkc, dvc, nq, H * D, S - T + t0 + 1, D, scale, tmp);
            continue;
          }
          rope->rows(q + r, H * D, t0, nq, qrot, D, false);
          ops_attention_gather_f32_ref(dout + r, nq, H * D, D, drow);
          tiles.run(qrot, kt, vt, kc, drow, dqrow, dkc, dvc, nq, D, S - T + t0 + 1, D, scale, tmp);
          rope->rows(dqrow, D, t0, nq, dq + r, H * D, true);
        }
      }
      if (rope) {
        rope->rows(dkc, D, 0, S, krot, D, true);
        ops_attention_scatter_f32_ref(krot, S, stride, D, dk + kv);
      } else {
        ops_attention_scatter_f32_ref(dkc, S, stride, D, dk + kv);
      }
      ops_attention_scatter_f32_ref(dvc, S, stride, D, dv + kv);
    }
  }
  return FT_OK;
}

}  // namespace

ft_status grad_sum_rows_f32(const float* x, size_t x_n, float* dst, size_t dst_n, int64_t M, int64_t N,
                            bool accumulate) {
  size_t nx;
  if (!ft_count2(M, N, &nx)) return FT_ERR_ARG;
  if (!ft_fits(x_n, nx) || !ft_fits(dst_n, (size_t)N)) return FT_ERR_SIZE;
  const int64_t blocks = blocks_of(N, COLS);
  ft_parallel_for(blocks, (int64_t)nx >= PAR_MIN, [&](int64_t b) {
    const int64_t c0 = b * COLS, c1 = min64(N, c0 + COLS);
    double acc[COLS];
    for (int64_t c = c0; c < c1; c++) acc[c - c0] = accumulate ? (double)dst[c] : 0.0;
    for (int64_t i = 0; i < M; i++) {
      for (int64_t c = c0; c < c1; c++) acc[c - c0] += x[i * N + c];
    }
    for (int64_t c = c0; c < c1; c++) dst[c] = (float)acc[c - c0];
  });
  return FT_OK;
}

ft_status grad_embedding_bwd_f32(const int32_t* ids, size_t ids_n, const float* dout, size_t dout_n, float* dtable,
                                 size_t dtable_n, int64_t N, int64_t V, int64_t C) {
  size_t nt, no;
  if (N < 0 || !ft_count2(V, C, &nt) || !ft_count2(N, C, &no)) return FT_ERR_ARG;
  if (!ft_fits(ids_n, (size_t)N) || !ft_fits(dout_n, no) || !ft_fits(dtable_n, nt)) return FT_ERR_SIZE;
  for (int64_t i = 0; i < N; i++) {
    if (ids[i] < 0 || ids[i] >= V) return FT_ERR_ARG;
  }
  // Each work item owns a column block of the whole table and adds the rows in order.
  const int64_t blocks = blocks_of(C, COLS);
  ft_parallel_for(blocks, (int64_t)no >= PAR_MIN, [&](int64_t b) {
    const int64_t c0 = b * COLS, c1 = min64(C, c0 + COLS);
    for (int64_t i = 0; i < N; i++) {
      float* row = dtable + (int64_t)ids[i] * C;
      const float* g = dout + i * C;
      for (int64_t c = c0; c < c1; c++) row[c] += g[c];
    }
  });
  return FT_OK;
}

ft_status grad_rmsnorm_bwd_f32(const float* x, size_t x_n, const float* w, size_t w_n, const float* dout,
                               size_t dout_n, float* dx, size_t dx_n, float* dw, size_t dw_n, int64_t N, int64_t C,
                               double eps, bool accumulate) {
  size_t nx;
  if (!ft_count2(N, C, &nx) || !(eps >= 0) || !std::isfinite(eps)) return FT_ERR_ARG;
  if (!ft_fits(x_n, nx) || !ft_fits(w_n, (size_t)C) || !ft_fits(dout_n, nx) || !ft_fits(dx_n, nx)) return FT_ERR_SIZE;
  if (dw != nullptr && !ft_fits(dw_n, (size_t)C)) return FT_ERR_SIZE;
  if (N == 0) return FT_OK;
  float* rstd = static_cast<float*>(std::malloc((size_t)N * sizeof(float)));
  if (rstd == nullptr) return FT_ERR_ALLOC;
  const auto fn = FT_PICK_ISA(grad_rmsnorm_bwd_f32);
  const bool par = (int64_t)nx >= PAR_MIN;
  ft_parallel_for(N, par, [&](int64_t i) { fn(x + i * C, w, dout + i * C, dx + i * C, rstd + i, C, (float)eps, accumulate); });
  if (dw != nullptr) {  // each thread a contiguous run of columns, all rows (column sums in row order)
    const auto dwfn = FT_PICK_ISA(grad_rmsnorm_dw_f32);
    const int64_t T = par ? omp_get_max_threads() : 1, per = (blocks_of(C, T) + 15) / 16 * 16;
    ft_parallel_for(T, par, [&](int64_t t) {
      const int64_t c0 = t * per, c1 = min64(C, c0 + per);
      if (c0 < c1) dwfn(x, dout, rstd, dw, N, C, c0, c1);
    });
  }
  std::free(rstd);
  return FT_OK;
}

ft_status grad_rope_bwd_f32(const float* dout, size_t dout_n, const int32_t* positions, size_t positions_n,
                            const float* inv_freq, size_t inv_freq_n, float* dx, size_t dx_n, int64_t B, int64_t T,
                            int64_t H, int64_t D) {
  // The transpose of a rotation is the rotation by -angle.
  return ops_rope_rotate_f32(dout, dout_n, positions, positions_n, inv_freq, inv_freq_n, dx, dx_n, B, T, H, D, true);
}

ft_status grad_attention_bwd_f32(const float* q, size_t q_n, const float* k, size_t k_n, const float* v, size_t v_n,
                                 const float* dout, size_t dout_n, float* dq, size_t dq_n, float* dk, size_t dk_n,
                                 float* dv, size_t dv_n, int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t D,
                                 int64_t Smax, int64_t S, double scale, bool bf16, const int32_t* positions,
                                 size_t positions_n, const float* inv_freq, size_t inv_freq_n) {
  size_t nq, nkv;
  if (!ft_count4(B, T, H, D, &nq) || !ft_count4(B, Smax, Hkv, D, &nkv)) return FT_ERR_ARG;
  if (Hkv < 1 || H % Hkv != 0 || T > S || S > Smax || !std::isfinite(scale)) return FT_ERR_ARG;
  if (!ft_fits(q_n, nq) || !ft_fits(dout_n, nq) || !ft_fits(dq_n, nq) || !ft_fits(k_n, nkv) || !ft_fits(v_n, nkv) ||
      !ft_fits(dk_n, nkv) || !ft_fits(dv_n, nkv))
    return FT_ERR_SIZE;
  const ft_status rope_ok = attn_rope_check(positions, positions_n, inv_freq, inv_freq_n, T, S, Smax, D);
  if (rope_ok != FT_OK) return rope_ok;
  const bool fused = positions != nullptr;
  const ft_isa isa = ft_active_isa();
  if (fused && nq > 0 && !(isa == FT_ISA_AVX512 || isa == FT_ISA_AVX2)) {
    // The row kernels: rotated copies of q and k, their gradients, then those rotated back.
    float* buf = static_cast<float*>(std::malloc((2 * nq + 2 * nkv) * sizeof(float)));
    if (buf == nullptr) return FT_ERR_ALLOC;
    float *qr = buf, *kr = qr + nq, *dqr = kr + nkv, *dkr = dqr + nq;
    ft_status st = ops_rope_rotate_f32(q, nq, positions, positions_n, inv_freq, inv_freq_n, qr, nq, B, T, H, D, false);
    if (st == FT_OK) st = ops_rope_rotate_f32(k, nkv, positions, positions_n, inv_freq, inv_freq_n, kr, nkv, B, T, Hkv, D, false);
    if (st == FT_OK)
      st = grad_attention_bwd_f32(qr, nq, kr, nkv, v, v_n, dout, dout_n, dqr, nq, dkr, nkv, dv, dv_n, B, T, H, Hkv, D, Smax,
                                  S, scale, bf16, nullptr, 0, nullptr, 0);
    if (st == FT_OK) st = ops_rope_rotate_f32(dqr, nq, positions, positions_n, inv_freq, inv_freq_n, dq, dq_n, B, T, H, D, true);
    if (st == FT_OK) st = ops_rope_rotate_f32(dkr, nkv, positions, positions_n, inv_freq, inv_freq_n, dk, dk_n, B, T, Hkv, D, true);
    std::free(buf);
    return st;
  }
  AttnRope rope{};
  if (fused && nq > 0 && attn_rope_make(positions, T, inv_freq, D, &rope) != FT_OK) return FT_ERR_ALLOC;
  const AttnRope* rp = fused ? &rope : nullptr;
  if (isa == FT_ISA_AVX512 || isa == FT_ISA_AVX2) {
    // The tiles' scatters write every key row below S of dk and dv: zero only the rows
    // from S to Smax (the unused part of a cache), or all when there is nothing to scatter.
    const int64_t from = nq == 0 ? 0 : S, row = Hkv * D;
    for (int64_t b = 0; b < B; b++) {
      std::memset(dk + (b * Smax + from) * row, 0, (size_t)((Smax - from) * row) * sizeof(float));
      std::memset(dv + (b * Smax + from) * row, 0, (size_t)((Smax - from) * row) * sizeof(float));
    }
  } else {
    std::memset(dk, 0, nkv * sizeof(float));  // the row kernels accumulate into them
    std::memset(dv, 0, nkv * sizeof(float));
  }
  if (nq == 0) return FT_OK;
  // bf16 products where the CPU has them (ops_attention_f32); else the f32 tiled kernels
  // where the ISA has one (the scalar reference stays one row at a time).
  if (bf16 && isa == FT_ISA_AVX512 && ft_cpu_has_avx512bf16())
    return attention_bwd_tiled(Bf16BwdTiles{}, q, k, v, dout, dq, dk, dv, B, T, H, Hkv, D, Smax, S, (float)scale, rp);
  if (isa == FT_ISA_AVX512)
    return attention_bwd_tiled(F32BwdTiles{grad_attention_bwd_tile_f32_avx512, ops_attention_pack_f32_avx512}, q, k, v,
                               dout, dq, dk, dv, B, T, H, Hkv, D, Smax, S, (float)scale, rp);
  if (isa == FT_ISA_AVX2)
    return attention_bwd_tiled(F32BwdTiles{grad_attention_bwd_tile_f32_avx2, ops_attention_pack_f32_ref}, q, k, v,
                               dout, dq, dk, dv, B, T, H, Hkv, D, Smax, S, (float)scale, rp);
  const int threads = omp_get_max_threads();
  size_t ns;
  if (!ft_count2(threads, 2 * S, &ns)) return FT_ERR_ARG;
  float* scratch = static_cast<float*>(std::malloc((ns > 0 ? ns : 1) * sizeof(float)));
  if (scratch == nullptr) return FT_ERR_ALLOC;
  const auto fn = FT_PICK_ISA(grad_attention_bwd_f32);
  const int64_t group = H / Hkv, stride = Hkv * D;
  // One work item per (b, kv head): it alone writes that dk / dv slice (and the dq rows
  // of its query heads), adding query heads then queries in order.
#pragma omp parallel num_threads(threads)
  {
    float* p = scratch + (int64_t)omp_get_thread_num() * 2 * S;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < B * Hkv; i++) {
      const int64_t b = i / Hkv, g = i % Hkv;
      const int64_t kv = (b * Smax * Hkv + g) * D;
      for (int64_t h = g * group; h < (g + 1) * group; h++) {
        for (int64_t t = 0; t < T; t++) {
          const int64_t r = ((b * T + t) * H + h) * D;
          fn(q + r, k + kv, v + kv, dout + r, dq + r, dk + kv, dv + kv, S - T + t + 1, stride, D, (float)scale, p);
        }
      }
    }
  }
  std::free(scratch);
  return FT_OK;
}

ft_status grad_silu_mul_bwd_f32(const float* gate, size_t gate_n, const float* up, size_t up_n, const float* dout,
                                size_t dout_n, float* dgate, size_t dgate_n, float* dup, size_t dup_n, int64_t n) {
  if (n < 0) return FT_ERR_ARG;
  const size_t un = (size_t)n;
  if (!ft_fits(gate_n, un) || !ft_fits(up_n, un) || !ft_fits(dout_n, un) || !ft_fits(dgate_n, un) || !ft_fits(dup_n, un))
    return FT_ERR_SIZE;
  const auto fn = FT_PICK_ISA(grad_silu_mul_bwd_f32);
  const int64_t blocks = blocks_of(n, BLOCK);
  ft_parallel_for(blocks, n >= PAR_MIN, [&](int64_t i) {
    const int64_t o = i * BLOCK, len = min64(BLOCK, n - o);
    fn(gate + o, up + o, dout + o, dgate + o, dup + o, len);
  });
  return FT_OK;
}

ft_status grad_cross_entropy_f32(float* logits, size_t logits_n, const int32_t* labels, size_t labels_n,
                                 double* loss, size_t loss_n, int64_t N, int64_t V, double grad_scale,
                                 int32_t* predicted, size_t predicted_n) {
  size_t nx;
  if (!ft_count2(N, V, &nx) || V < 1 || V > INT32_MAX || !std::isfinite(grad_scale)) return FT_ERR_ARG;
  if (!ft_fits(logits_n, nx) || !ft_fits(labels_n, (size_t)N) || !ft_fits(loss_n, (size_t)N)) return FT_ERR_SIZE;
  if (predicted && !ft_fits(predicted_n, (size_t)N)) return FT_ERR_SIZE;
  for (int64_t i = 0; i < N; i++) {
    if (labels[i] != -100 && (labels[i] < 0 || labels[i] >= V)) return FT_ERR_ARG;
  }
  const auto fn = FT_PICK_ISA(grad_cross_entropy_f32);
  const auto argmax = FT_PICK_ISA(ops_argmax_f32);
  ft_parallel_for(N, (int64_t)nx >= PAR_MIN, [&](int64_t i) {
    if (labels[i] == -100) {
      if (predicted) argmax(logits + i * V, predicted + i, 1, V);
      std::memset(logits + i * V, 0, (size_t)V * sizeof(float));
      loss[i] = 0;
    } else {
      loss[i] = fn(logits + i * V, V, labels[i], grad_scale, predicted ? predicted + i : nullptr);
    }
  });
  return FT_OK;
}

ft_status grad_dropout_f32(const float* x, size_t x_n, float* out, size_t out_n, int64_t n, double p, int64_t seed) {
  if (n < 0 || !(p >= 0) || !(p < 1) || seed < 0 || seed >= (int64_t)1 << 53) return FT_ERR_ARG;
  if (!ft_fits(x_n, (size_t)n) || !ft_fits(out_n, (size_t)n)) return FT_ERR_SIZE;
  const auto fn = FT_PICK_ISA(grad_dropout_f32);
  const uint32_t threshold = grad_dropout_threshold(p);
  const float scale = (float)(1.0 / (1.0 - p));
  const int64_t blocks = blocks_of(n, BLOCK);
  ft_parallel_for(blocks, n >= PAR_MIN, [&](int64_t i) {
    const int64_t o = i * BLOCK;
    fn(x + o, out + o, min64(BLOCK, n - o), (uint64_t)o, (uint64_t)seed, threshold, scale);
  });
  return FT_OK;
}

ft_status grad_add_scaled_f32(const float* a, size_t a_n, const float* b, size_t b_n, float* out, size_t out_n,
                              int64_t n, double s) {
  if (n < 0 || !std::isfinite(s)) return FT_ERR_ARG;
  if (!ft_fits(a_n, (size_t)n) || !ft_fits(b_n, (size_t)n) || !ft_fits(out_n, (size_t)n)) return FT_ERR_SIZE;
  const auto fn = FT_PICK_ISA(grad_add_scaled_f32);
  const int64_t blocks = blocks_of(n, BLOCK);
  ft_parallel_for(blocks, n >= PAR_MIN, [&](int64_t i) {
    const int64_t o = i * BLOCK;
    fn(a + o, b + o, out + o, min64(BLOCK, n - o), (float)s);
  });
  return FT_OK;
}

ft_status grad_scale_f32(float* x, size_t x_n, int64_t n, double s) {
  if (n < 0 || !std::isfinite(s)) return FT_ERR_ARG;
  if (!ft_fits(x_n, (size_t)n)) return FT_ERR_SIZE;
  const auto fn = FT_PICK_ISA(grad_scale_f32);
  const int64_t blocks = blocks_of(n, BLOCK);
  ft_parallel_for(blocks, n >= PAR_MIN, [&](int64_t i) { fn(x + i * BLOCK, min64(BLOCK, n - i * BLOCK), (float)s); });
  return FT_OK;
}

ft_status grad_sum_squares_f32(const float* x, size_t x_n, int64_t n, double* out) {
  if (n < 0 || out == nullptr) return FT_ERR_ARG;
  if (!ft_fits(x_n, (size_t)n)) return FT_ERR_SIZE;
  const int64_t blocks = blocks_of(n, GRAD_SS_BLOCK);
  double* sums = static_cast<double*>(std::malloc((size_t)(blocks > 0 ? blocks : 1) * sizeof(double)));
  if (sums == nullptr) return FT_ERR_ALLOC;
  const auto fn = FT_PICK_ISA(grad_sum_squares_f32);
  ft_parallel_for(blocks, n >= PAR_MIN, [&](int64_t i) {
    const int64_t o = i * GRAD_SS_BLOCK;
    sums[i] = fn(x + o, min64(GRAD_SS_BLOCK, n - o));
  });
  double s = 0;
  for (int64_t i = 0; i < blocks; i++) s += sums[i];
  std::free(sums);
  *out = s;
  return FT_OK;
}

ft_status grad_adamw_f32(float* param, size_t param_n, const float* grad, size_t grad_n, float* m, size_t m_n,
                         float* v, size_t v_n, int64_t n, double lr, double beta1, double beta2, double eps,
                         double weight_decay, int64_t step, double grad_scale) {
  const bool ok = std::isfinite(lr) && beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1 && eps >= 0 &&
                  std::isfinite(eps) && std::isfinite(weight_decay) && std::isfinite(grad_scale) && step >= 1;
  if (n < 0 || !ok) return FT_ERR_ARG;
  const size_t un = (size_t)n;
  if (!ft_fits(param_n, un) || !ft_fits(grad_n, un) || !ft_fits(m_n, un) || !ft_fits(v_n, un)) return FT_ERR_SIZE;
  // Python floats in torch: bias corrections and the step size in double, each scalar
  // rounded to f32 where it meets an f32 tensor (beta^step through std::pow in double).
  const double bc1 = 1.0 - std::pow(beta1, (double)step);
  const double bc2 = 1.0 - std::pow(beta2, (double)step);
  const grad_adamw_consts c = {
      (float)grad_scale, (float)(1.0 - lr * weight_decay), (float)beta1, (float)(1.0 - beta1),
      (float)beta2, (float)(1.0 - beta2), (float)std::sqrt(bc2), (float)eps, (float)(-(lr / bc1)),
  };
  const auto fn = FT_PICK_ISA(grad_adamw_f32);
  const int64_t blocks = blocks_of(n, BLOCK);
  ft_parallel_for(blocks, n >= PAR_MIN, [&](int64_t i) {
    const int64_t o = i * BLOCK;
    fn(param + o, grad + o, m + o, v + o, min64(BLOCK, n - o), &c);
  });
  return FT_OK;
}
