// Checked entry points of the Llama forward ops: every dim is validated and every buffer
// size compared with what the dims require before any memory is touched (embedding also
// range-checks every id first); then the row kernels of ft_active_isa() run, split across
// OpenMP threads with static schedules (each row / block is computed by one thread, so
// results do not depend on the thread count).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>
#include <omp.h>
#include "attention.h"
#include "dispatch.h"
#include "ops.h"
#include "parallel.h"
#include "pool.h"

namespace {

// Work below this many elements runs on one thread (thread start-up costs more).
constexpr int64_t PAR_MIN = 1 << 15;
// Element-wise ops: elements per OpenMP work item.
constexpr int64_t BLOCK = 4096;
// Attention with fewer query rows than this per head (decode, short prefill chunks) runs
// the row kernels: a tile costs ATTN_ROWS rows whatever T is, and packing a kv head's S
// keys costs about as much as a few rows' scores. Measured (bench/attention.ts --decode
// style, S = 2048, one thread): at T = 12 the tiles are 1.3x (AVX-512) to 1.6x (AVX2)
// faster than the row kernels per row, at T = 4 about 2x slower.
constexpr int64_t ATTN_TILE_MIN_T = ATTN_ROWS;

typedef void (*binary_fn)(const float* a, const float* b, float* out, int64_t n);

// ids (N) all in [0, V), with the buffers of an (N) -> (N, C) lookup in a (V, C) table.
ft_status check_embedding(const int32_t* ids, size_t ids_n, size_t table_n, size_t out_n, int64_t N, int64_t V,
                          int64_t C) {
  size_t nt, no;
  if (N < 0 || !ft_count2(V, C, &nt) || !ft_count2(N, C, &no)) return FT_ERR_ARG;
  if (!ft_fits(ids_n, (size_t)N) || !ft_fits(table_n, nt) || !ft_fits(out_n, no)) return FT_ERR_SIZE;
  for (int64_t i = 0; i < N; i++) {
    if (ids[i] < 0 || ids[i] >= V) return FT_ERR_ARG;
  }
  return FT_OK;
}

// Three same-sized element-wise buffers of n elements.
ft_status check_elementwise(size_t a_n, size_t b_n, size_t out_n, int64_t n) {
  if (n < 0) return FT_ERR_ARG;
  if (!ft_fits(a_n, (size_t)n) || !ft_fits(b_n, (size_t)n) || !ft_fits(out_n, (size_t)n)) return FT_ERR_SIZE;
  return FT_OK;
}

// a, b (n) -> out (n) in blocks of BLOCK elements, one block per work item.
void run_blocks(binary_fn fn, const float* a, const float* b, float* out, int64_t n) {
  const int64_t blocks = (n + BLOCK - 1) / BLOCK;
  ft_parallel_for(blocks, n >= PAR_MIN, [&](int64_t i) {
    const int64_t len = n - i * BLOCK < BLOCK ? n - i * BLOCK : BLOCK;
    fn(a + i * BLOCK, b + i * BLOCK, out + i * BLOCK, len);
  });
}

typedef void (*pack_fn)(const float* k, int64_t n, int64_t stride, int64_t D, float* kt);
typedef void (*tile_fn)(const float* q, const float* kt, const float* v, float* out, int64_t nq, int64_t qstride,
                        int64_t n, int64_t stride, int64_t D, float scale, float* scratch);

}  // namespace

ft_status ops_embedding_f32(const int32_t* ids, size_t ids_n, const float* table, size_t table_n, float* out,
                            size_t out_n, int64_t N, int64_t V, int64_t C) {
  const ft_status st = check_embedding(ids, ids_n, table_n, out_n, N, V, C);
  if (st != FT_OK) return st;
  ft_parallel_for(N, N * C >= PAR_MIN, [&](int64_t i) { ops_embedding_f32_ref(ids + i, table, out + i * C, 1, C); });
  return FT_OK;
}

ft_status ops_embedding_bf16(const int32_t* ids, size_t ids_n, const uint16_t* table, size_t table_n, float* out,
                             size_t out_n, int64_t N, int64_t V, int64_t C) {
  const ft_status st = check_embedding(ids, ids_n, table_n, out_n, N, V, C);
  if (st != FT_OK) return st;
  ft_parallel_for(N, N * C >= PAR_MIN, [&](int64_t i) { ops_embedding_bf16_ref(ids + i, table, out + i * C, 1, C); });
  return FT_OK;
}

ft_status ops_rmsnorm_f32(const float* x, size_t x_n, const float* w, size_t w_n, float* out, size_t out_n,
                          int64_t N, int64_t C, double eps) {
  size_t nx;
  if (!ft_count2(N, C, &nx) || !(eps >= 0) || !std::isfinite(eps)) return FT_ERR_ARG;
  if (!ft_fits(x_n, nx) || !ft_fits(w_n, (size_t)C) || !ft_fits(out_n, nx)) return FT_ERR_SIZE;
  const auto fn = FT_PICK_ISA(ops_rmsnorm_f32);
  ft_parallel_for(N, N * C >= PAR_MIN, [&](int64_t i) { fn(x + i * C, w, out + i * C, 1, C, (float)eps); });
  return FT_OK;
}

namespace {

// The last (cos, sin, -sin) table built on this thread, with the inputs that built it. A
// step rotates q and k of every layer, forward and backward, at the same positions: 48
// tables of 16K libm pairs for a medium step, all the same. Compared by value (T + D/2
// numbers), so new positions or frequencies always build a new table.
struct RopeTables {
  std::vector<int32_t> positions;
  std::vector<float> inv_freq;
  std::vector<float> table;  // cos, sin, -sin: each (T, D/2)

  const float* get(const int32_t* pos, int64_t T, const float* freq, int64_t half) {
    const bool same = (int64_t)positions.size() == T && (int64_t)inv_freq.size() == half &&
                      std::equal(pos, pos + T, positions.begin()) &&
                      std::memcmp(freq, inv_freq.data(), (size_t)half * sizeof(float)) == 0;
    if (!same) {
      positions.assign(pos, pos + T);
      inv_freq.assign(freq, freq + half);
      table.resize((size_t)(3 * T * half));
      float *cos_t = table.data(), *sin_t = cos_t + T * half, *neg_t = sin_t + T * half;
      ops_rope_table(pos, freq, T, half, cos_t, sin_t);
      // The inverse (transpose) of a rotation is the rotation by -angle: sin negated
      // (exact: negation does not round).
      for (int64_t i = 0; i < T * half; i++) neg_t[i] = -sin_t[i];
    }
    return table.data();
  }
};

}  // namespace

const float* ops_rope_tables(const int32_t* positions, int64_t T, const float* inv_freq, int64_t half) {
  thread_local RopeTables tables;
  try {
    return tables.get(positions, T, inv_freq, half);
  } catch (const std::bad_alloc&) {
    tables = RopeTables{};
    return nullptr;
  }
}

ft_status attn_rope_check(const int32_t* positions, size_t positions_n, const float* inv_freq, size_t inv_freq_n,
                          int64_t T, int64_t S, int64_t Smax, int64_t D) {
  if (positions == nullptr) return FT_OK;
  if (inv_freq == nullptr || D % 2 != 0 || S != T || Smax != T) return FT_ERR_ARG;
  if (!ft_fits(positions_n, (size_t)T) || !ft_fits(inv_freq_n, (size_t)(D / 2))) return FT_ERR_SIZE;
  return FT_OK;
}

ft_status attn_rope_make(const int32_t* positions, int64_t T, const float* inv_freq, int64_t D, AttnRope* rope) {
  const int64_t half = D / 2;
  const float* table = ops_rope_tables(positions, T, inv_freq, half);
  if (table == nullptr) return FT_ERR_ALLOC;
  *rope = AttnRope{table, table + T * half, table + 2 * T * half, half, FT_PICK_ISA(ops_rope_f32)};
  return FT_OK;
}

ft_status ops_rope_rotate_f32(const float* x, size_t x_n, const int32_t* positions, size_t positions_n,
                              const float* inv_freq, size_t inv_freq_n, float* out, size_t out_n, int64_t B,
                              int64_t T, int64_t H, int64_t D, bool inverse) {
  size_t nx, nt;
  if (!ft_count4(B, T, H, D, &nx) || D % 2 != 0 || !ft_count2(T, D, &nt)) return FT_ERR_ARG;
  if (!ft_fits(x_n, nx) || !ft_fits(out_n, nx) || !ft_fits(positions_n, (size_t)T) ||
      !ft_fits(inv_freq_n, (size_t)(D / 2)))
    return FT_ERR_SIZE;
  if (nx == 0) return FT_OK;
  const int64_t half = D / 2;
  const float* table = ops_rope_tables(positions, T, inv_freq, half);
  if (table == nullptr) return FT_ERR_ALLOC;
  const float* cos_t = table;
  const float* sin_t = table + (inverse ? 2 : 1) * T * half;
  const auto fn = FT_PICK_ISA(ops_rope_f32);
  // One work item per token (b, t): its H heads share the position's cos / sin.
  ft_parallel_for(B * T, (int64_t)nx >= PAR_MIN, [&](int64_t bt) {
    const int64_t t = bt % T;
    fn(x + bt * H * D, D, cos_t + t * half, sin_t + t * half, 0, out + bt * H * D, D, H, D);
  });
  return FT_OK;
}

ft_status ops_rope_f32(const float* x, size_t x_n, const int32_t* positions, size_t positions_n,
                       const float* inv_freq, size_t inv_freq_n, float* out, size_t out_n, int64_t B, int64_t T,
                       int64_t H, int64_t D) {
  return ops_rope_rotate_f32(x, x_n, positions, positions_n, inv_freq, inv_freq_n, out, out_n, B, T, H, D, false);
}

namespace {

// The f32 tiles' panels: keys packed in (D, ATTN_KEYS) blocks, values gathered contiguous.
struct F32Tiles {
  tile_fn tile;
  pack_fn pack;
  int64_t panel(int64_t S, int64_t D) const { return D * attn_panel_keys(S); }
  int64_t scratch(int64_t S, int64_t D) const { return attn_fwd_scratch(S, D); }
  void pack_kv(const float* k, int64_t kstride, const float* v, int64_t vstride, int64_t S, int64_t D, float* kt,
               float* vc) const {
    pack(k, S, kstride, D, kt);
    ops_attention_gather_f32_ref(v, S, vstride, D, vc);
  }
  void run(const float* q, const float* kt, const float* vc, float* out, int64_t nq, int64_t qstride, int64_t n,
           int64_t D, float scale, float* tmp) const {
    tile(q, kt, vc, out, nq, qstride, n, D, D, scale, tmp);
  }
};

// The bf16 tiles' panels (u32 bf16 pairs in float-sized slots): keys key-major, values
// as row pairs.
struct Bf16Tiles {
  int64_t panel(int64_t S, int64_t D) const {
    return std::max(attn_bf16_key_panel(S, D), attn_bf16_row_panel(S, D));
  }
  int64_t scratch(int64_t S, int64_t D) const { return attn_bf16_fwd_scratch(S, D); }
  void pack_kv(const float* k, int64_t kstride, const float* v, int64_t vstride, int64_t S, int64_t D, float* kt,
               float* vp) const {
    ops_attention_pack_keys_bf16_avx512(k, S, kstride, D, attn_u32(kt));
    ops_attention_pack_rows_bf16_avx512(v, S, vstride, D, attn_u32(vp));
  }
  void run(const float* q, const float* kt, const float* vp, float* out, int64_t nq, int64_t qstride, int64_t n,
           int64_t D, float scale, float* tmp) const {
    ops_attention_tile_bf16_avx512(q, attn_u32(kt), attn_u32(vp), out, nq, qstride, n, D, scale, tmp);
  }
};

// Tiled attention (attention.h): work items (b, h, row block) in that order, so static
// chunks hold whole heads (every causal window length: balanced) and a thread repacks its
// key and value panels only when the item's (b, kv head) changes. Each item writes its own
// out rows. With rope, keys are rotated into krot before packing, and each tile's q rows
// into qrot, its out rows going through orow (all contiguous, D apart).
template <class Tiles>
ft_status attention_tiled(const Tiles& tiles, const float* q, const float* k, const float* v, float* out, int64_t B,
                          int64_t T, int64_t H, int64_t Hkv, int64_t D, int64_t Smax, int64_t S, float scale,
                          const AttnRope* rope) {
  const int threads = omp_get_max_threads();
  // Per thread: the key panel, the value panel, the tile's scratch, then krot, qrot, orow.
  const int64_t panel = tiles.panel(S, D), work = 2 * panel + tiles.scratch(S, D);
  const int64_t per = work + (rope ? (S + 2 * ATTN_ROWS) * D : 0);
  size_t ns;
  if (!ft_count2(threads, per, &ns)) return FT_ERR_ARG;
  // From the caching pool: a fresh block this size (hundreds of KiB) would be mapped anew
  // and fault in page by page on every call.
  const PoolScratch pool(ns * sizeof(float));
  float* scratch = reinterpret_cast<float*>(pool.get());
  if (scratch == nullptr) return FT_ERR_ALLOC;
  const int64_t group = H / Hkv, stride = Hkv * D, blocks = (T + ATTN_ROWS - 1) / ATTN_ROWS;
  // Work item i: batch b, head h, rows t0 .. t0 + nq - 1 of q and out, starting at float r.
  struct Item {
    int64_t b, h, t0, nq, r;
  };
  auto item = [&](int64_t i) -> Item {
    const int64_t b = i / (blocks * H), h = (i / blocks) % H, t0 = (i % blocks) * ATTN_ROWS;
    return Item{b, h, t0, attn_tile_rows(T, t0), ((b * T + t0) * H + h) * D};
  };
#pragma omp parallel num_threads(threads)
  {
    float* kt = scratch + (int64_t)omp_get_thread_num() * per;
    float* vc = kt + panel;
    float* tmp = vc + panel;
    float* krot = kt + work;
    float* qrot = krot + S * D;
    float* orow = qrot + ATTN_ROWS * D;
    int64_t packed = -1;  // (b, kv head) whose keys / values kt, vc hold
#pragma omp for schedule(static)
    for (int64_t i = 0; i < B * H * blocks; i++) {
      const auto [b, h, t0, nq, r] = item(i);
      const int64_t kvh = b * Hkv + h / group, kv = (b * Smax * Hkv + h / group) * D;
      if (kvh != packed) {
        if (rope) {
          rope->rows(k + kv, stride, 0, S, krot, D, false);
          tiles.pack_kv(krot, D, v + kv, stride, S, D, kt, vc);
        } else {
          tiles.pack_kv(k + kv, stride, v + kv, stride, S, D, kt, vc);
        }
        packed = kvh;
      }
      if (i + 1 < B * H * blocks) {  // the next item's q rows (this thread's, but at the end of its share)
        const Item next = item(i + 1);
        attn_prefetch_rows(q + next.r, next.nq, H * D, D);
      }
      // Query t sees keys 0 ..= S - T + t.
      if (rope) {
        rope->rows(q + r, H * D, t0, nq, qrot, D, false);
        tiles.run(qrot, kt, vc, orow, nq, D, S - T + t0 + 1, D, scale, tmp);
        ops_attention_scatter_f32_ref(orow, nq, H * D, D, out + r);
      } else {
        tiles.run(q + r, kt, vc, out + r, nq, H * D, S - T + t0 + 1, D, scale, tmp);
      }
    }
  }
  return FT_OK;
}

}  // namespace

ft_status ops_attention_f32(const float* q, size_t q_n, const float* k, size_t k_n, const float* v, size_t v_n,
                            float* out, size_t out_n, int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t D,
                            int64_t Smax, int64_t S, double scale, bool bf16, const int32_t* positions,
                            size_t positions_n, const float* inv_freq, size_t inv_freq_n) {
  size_t nq, nkv;
  if (!ft_count4(B, T, H, D, &nq) || !ft_count4(B, Smax, Hkv, D, &nkv)) return FT_ERR_ARG;
  if (Hkv < 1 || H % Hkv != 0 || T > S || S > Smax || !std::isfinite(scale)) return FT_ERR_ARG;
  if (!ft_fits(q_n, nq) || !ft_fits(out_n, nq) || !ft_fits(k_n, nkv) || !ft_fits(v_n, nkv)) return FT_ERR_SIZE;
  const ft_status rope_ok = attn_rope_check(positions, positions_n, inv_freq, inv_freq_n, T, S, Smax, D);
  if (rope_ok != FT_OK) return rope_ok;
  if (nq == 0) return FT_OK;
  const bool fused = positions != nullptr;
  AttnRope rope{};
  if (fused && attn_rope_make(positions, T, inv_freq, D, &rope) != FT_OK) return FT_ERR_ALLOC;
  const AttnRope* rp = fused ? &rope : nullptr;
  // bf16 products: the bf16 tiles for every T (the backward's P is then the forward's).
  if (bf16 && ft_active_isa() == FT_ISA_AVX512 && ft_cpu_has_avx512bf16())
    return attention_tiled(Bf16Tiles{}, q, k, v, out, B, T, H, Hkv, D, Smax, S, (float)scale, rp);
  // The tiled kernels where the ISA has one (the scalar reference stays one row at a time).
  if (T >= ATTN_TILE_MIN_T && ft_active_isa() == FT_ISA_AVX512)
    return attention_tiled(F32Tiles{ops_attention_tile_f32_avx512, ops_attention_pack_f32_avx512}, q, k, v, out, B, T,
                           H, Hkv, D, Smax, S, (float)scale, rp);
  if (T >= ATTN_TILE_MIN_T && ft_active_isa() == FT_ISA_AVX2)
    return attention_tiled(F32Tiles{ops_attention_tile_f32_avx2, ops_attention_pack_f32_ref}, q, k, v, out, B, T, H,
                           Hkv, D, Smax, S, (float)scale, rp);
  if (fused) {  // the row kernels: rotated copies of q and k, then attention on them
    float* qr = static_cast<float*>(std::malloc(nq * sizeof(float)));
    float* kr = static_cast<float*>(std::malloc((nkv > 0 ? nkv : 1) * sizeof(float)));
    ft_status st = qr && kr ? FT_OK : FT_ERR_ALLOC;
    if (st == FT_OK) st = ops_rope_rotate_f32(q, nq, positions, positions_n, inv_freq, inv_freq_n, qr, nq, B, T, H, D, false);
    if (st == FT_OK) st = ops_rope_rotate_f32(k, nkv, positions, positions_n, inv_freq, inv_freq_n, kr, nkv, B, T, Hkv, D, false);
    if (st == FT_OK)
      st = ops_attention_f32(qr, nq, kr, nkv, v, v_n, out, out_n, B, T, H, Hkv, D, Smax, S, scale, bf16, nullptr, 0, nullptr, 0);
    std::free(qr);
    std::free(kr);
    return st;
  }
  // Row kernels (decode, and the reference): one scratch row of S scores per thread.
  const int threads = omp_get_max_threads();
  size_t ns;
  if (!ft_count2(threads, S, &ns)) return FT_ERR_ARG;
  float* scratch = static_cast<float*>(std::malloc(ns * sizeof(float)));
  if (scratch == nullptr) return FT_ERR_ALLOC;
  const auto fn = FT_PICK_ISA(ops_attention_f32);
  const int64_t group = H / Hkv, rows = B * T * H, stride = Hkv * D;
#pragma omp parallel num_threads(threads)
  {
    float* p = scratch + (int64_t)omp_get_thread_num() * S;
    // Work items in (b, h, t) order: contiguous static chunks then hold whole heads (every
    // causal window length, so balanced work) and neighbouring heads share kv rows.
#pragma omp for schedule(static)
    for (int64_t i = 0; i < rows; i++) {
      // Query head h reads kv head h / group; query t sits at position S - T + t and sees
      // keys 0 ..= S - T + t. r is the (b, t, h) row of q and out.
      const int64_t t = i % T, h = (i / T) % H, b = i / (T * H);
      const int64_t r = (b * T + t) * H + h;
      const int64_t kv = (b * Smax * Hkv + h / group) * D;
      fn(q + r * D, k + kv, v + kv, out + r * D, S - T + t + 1, stride, D, (float)scale, p);
    }
  }
  std::free(scratch);
  return FT_OK;
}

ft_status ops_silu_mul_f32(const float* gate, size_t gate_n, const float* up, size_t up_n, float* out,
                           size_t out_n, int64_t n) {
  const ft_status st = check_elementwise(gate_n, up_n, out_n, n);
  if (st != FT_OK) return st;
  const auto fn = FT_PICK_ISA(ops_silu_mul_f32);
  run_blocks(fn, gate, up, out, n);
  return FT_OK;
}

ft_status ops_add_f32(const float* a, size_t a_n, const float* b, size_t b_n, float* out, size_t out_n, int64_t n) {
  const ft_status st = check_elementwise(a_n, b_n, out_n, n);
  if (st != FT_OK) return st;
  const auto fn = FT_PICK_ISA(ops_add_f32);
  run_blocks(fn, a, b, out, n);
  return FT_OK;
}

ft_status ops_softmax_f32(const float* x, size_t x_n, float* out, size_t out_n, int64_t N, int64_t V,
                          double temperature) {
  size_t nx;
  if (!ft_count2(N, V, &nx) || !(temperature > 0) || !std::isfinite(temperature)) return FT_ERR_ARG;
  if (!ft_fits(x_n, nx) || !ft_fits(out_n, nx)) return FT_ERR_SIZE;
  const float inv_temp = (float)(1.0 / temperature);
  if (!std::isfinite(inv_temp)) return FT_ERR_ARG;  // temperature below ~3e-39
  const auto fn = FT_PICK_ISA(ops_softmax_f32);
  ft_parallel_for(N, (int64_t)nx >= PAR_MIN, [&](int64_t i) { fn(x + i * V, out + i * V, 1, V, inv_temp); });
  return FT_OK;
}

ft_status ops_argmax_f32(const float* x, size_t x_n, int32_t* out, size_t out_n, int64_t N, int64_t V) {
  size_t nx;
  if (!ft_count2(N, V, &nx) || V < 1 || V > INT32_MAX) return FT_ERR_ARG;
  if (!ft_fits(x_n, nx) || !ft_fits(out_n, (size_t)N)) return FT_ERR_SIZE;
  const auto fn = FT_PICK_ISA(ops_argmax_f32);
  ft_parallel_for(N, (int64_t)nx >= PAR_MIN, [&](int64_t i) { fn(x + i * V, out + i, 1, V); });
  return FT_OK;
}
