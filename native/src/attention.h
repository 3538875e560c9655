// Tiled causal attention kernels (forward and backward), the fast path behind the checked
// dispatchers ops_attention_f32 (ops_dispatch.cc) and grad_attention_bwd_f32
// (grad_dispatch.cc). Their specification is the one-row scalar references
// ops_attention_f32_ref / grad_attention_bwd_f32_ref: a tile computes exactly what
// ATTN_ROWS calls of those would, with different (f32, FMA) rounding.
//
// Layout, GEMM-micro-kernel style (FlashAttention-2 without the online softmax: a whole
// R x S score block fits the per-thread scratch, so the softmax is exact, two-pass):
// - the keys of one (b, kv head) are packed once per thread into blocks of ATTN_KEYS keys,
//   each block (D, ATTN_KEYS) key-major, zero-padded past n; every query head of the GQA
//   group and every row block then reuses the panel;
// - a tile is ATTN_ROWS consecutive query rows of one head; row i sees n + i keys. The
//   score block (ATTN_ROWS, cols) comes from broadcasting q[i][d] against 32-key vectors
//   (no horizontal reductions), then P V / dS K read value / key rows directly.
// A tile with nq < ATTN_ROWS rows computes its missing rows as copies of the last one and
// drops them, so the register-blocked inner loops always have the same shape.
#pragma once
#include "ftune.h"

// RoPE fused into the attention of a training step (no KV cache: query t and key t both sit
// at positions[t], S == T == Smax). The drivers rotate q and k rows as they gather them and
// rotate dq and dk back before writing them, with the rope op's own kernel (fn:
// ops_rope_f32_<isa>, a tile's or a head's rows in one call), so every value is bit for bit
// what rope then attention gives, and the rotated q and k never travel through memory.
struct AttnRope {
  const float* cos;  // (T, D/2)
  const float* sin;  // (T, D/2)
  const float* neg;  // (T, D/2): -sin, the inverse rotation
  int64_t half;      // D/2
  void (*fn)(const float* x, int64_t xstride, const float* cos_t, const float* sin_t, int64_t tstride, float* out,
             int64_t ostride, int64_t n, int64_t D);
  // n rows of x at stride, at table rows t0.. -> out rows at ostride; by -angle when inverse.
  void rows(const float* x, int64_t stride, int64_t t0, int64_t n, float* out, int64_t ostride, bool inverse) const {
    fn(x, stride, cos + t0 * half, (inverse ? neg : sin) + t0 * half, half, out, ostride, n, 2 * half);
  }
};

// The dispatchers' shared handling of a fused rope (ops_dispatch.cc). attn_rope_check: the
// arguments of ops_attention_f32 / grad_attention_bwd_f32 when positions is not null (no
// cache: S == T == Smax; D even; tables long enough). attn_rope_make: *rope for those
// positions (this thread's cached tables, ops_rope_tables) and the active ISA's kernel.
ft_status attn_rope_check(const int32_t* positions, size_t positions_n, const float* inv_freq, size_t inv_freq_n,
                          int64_t T, int64_t S, int64_t Smax, int64_t D);
ft_status attn_rope_make(const int32_t* positions, int64_t T, const float* inv_freq, int64_t D, AttnRope* rope);

// Starts loading rows [0, n) of x (D floats each, `stride` floats apart) into the cache:
// the drivers call it for the next tile's q (and dout) rows while the current tile runs.
// Those rows lie a row of all heads apart (3 KiB at H = 12, D = 64) and come from memory,
// so a tile's first reads of them otherwise wait (perf: the f32 forward tile's row copy
// was 28% of its own time).
inline void attn_prefetch_rows(const float* x, int64_t n, int64_t stride, int64_t D) {
  for (int64_t j = 0; j < n; j++)
    for (int64_t d = 0; d < D; d += 16) __builtin_prefetch(x + j * stride + d, 0, 3);
}

// Query rows per tile and keys per packed block.
constexpr int64_t ATTN_ROWS = 12;
constexpr int64_t ATTN_KEYS = 32;

// Query rows of the tile starting at row t0 of T: ATTN_ROWS, fewer in the last tile.
inline int64_t attn_tile_rows(int64_t T, int64_t t0) { return T - t0 < ATTN_ROWS ? T - t0 : ATTN_ROWS; }

// Keys of a panel rounded up to whole blocks.
inline int64_t attn_panel_keys(int64_t n) { return (n + ATTN_KEYS - 1) / ATTN_KEYS * ATTN_KEYS; }
// Scratch floats of one forward tile call for S keys: the score block and the q rows.
inline int64_t attn_fwd_scratch(int64_t S, int64_t D) { return ATTN_ROWS * (attn_panel_keys(S) + D); }
// Scratch floats of one backward tile call: score and dP blocks, q and dout rows.
inline int64_t attn_bwd_scratch(int64_t S, int64_t D) { return 2 * attn_fwd_scratch(S, D); }

// k (n, D) with rows `stride` floats apart -> kt (attn_panel_keys(n) / ATTN_KEYS blocks
// of (D, ATTN_KEYS)), keys >= n zero.
void ops_attention_pack_f32_ref(const float* k, int64_t n, int64_t stride, int64_t D, float* kt);
void ops_attention_pack_f32_avx512(const float* k, int64_t n, int64_t stride, int64_t D, float* kt);
// x (n, D) at stride <-> dst (n, D) contiguous. The cache rows of one kv head lie Hkv * D
// floats apart (3 KiB at Hkv = 12, D = 64): streamed per key, they map to a few cache
// sets and evict each other, so the tiles read (and the backward accumulates) contiguous
// copies.
void ops_attention_gather_f32_ref(const float* x, int64_t n, int64_t stride, int64_t D, float* dst);
void ops_attention_scatter_f32_ref(const float* src, int64_t n, int64_t stride, int64_t D, float* x);

// Forward tile: q rows (nq, D) at qstride, nq in [1, ATTN_ROWS]; kt the packed keys (at
// least n + nq - 1 of them), v (n + nq - 1, D) at stride -> out rows (nq, D) at qstride,
// out_i = softmax(scale kt^T q_i over keys [0, n + i)) v. scratch: attn_fwd_scratch(n + nq - 1, D).
void ops_attention_tile_f32_avx512(const float* q, const float* kt, const float* v, float* out, int64_t nq,
                                   int64_t qstride, int64_t n, int64_t stride, int64_t D, float scale,
                                   float* scratch);
void ops_attention_tile_f32_avx2(const float* q, const float* kt, const float* v, float* out, int64_t nq,
                                 int64_t qstride, int64_t n, int64_t stride, int64_t D, float scale, float* scratch);

// Backward tile: q, dout rows (nq, D) at qstride; kt, vt the packed keys and values; k, v
// (n + nq - 1, D) at stride -> dq rows (overwritten); dk, dv rows [0, n + nq - 1) at stride
// accumulated (rows in order). Same math as grad_attention_bwd_f32_ref per row:
// P recomputed, dP = dout v^T, dS = P (dP - sum P dP) scale, dq = dS k, dk += dS^T q,
// dv += P^T dout. scratch: attn_bwd_scratch(n + nq - 1, D).
void grad_attention_bwd_tile_f32_avx512(const float* q, const float* kt, const float* vt, const float* k,
                                        const float* dout, float* dq, float* dk, float* dv, int64_t nq,
                                        int64_t qstride, int64_t n, int64_t stride, int64_t D, float scale,
                                        float* scratch);
void grad_attention_bwd_tile_f32_avx2(const float* q, const float* kt, const float* vt, const float* k,
                                      const float* dout, float* dq, float* dk, float* dv, int64_t nq, int64_t qstride,
                                      int64_t n, int64_t stride, int64_t D, float scale, float* scratch);

// bf16 tiles (vdpbf16ps; need ft_cpu_has_avx512bf16()), the autocast path: q, k, v, dout,
// the probabilities and dS are rounded to bf16 (vcvtne(2)ps2bf16: nearest even, a
// subnormal to zero) for the products, which multiply bf16 pairs and accumulate in f32;
// the softmax and its backward stay f32. Same
// tile shapes as the f32 tiles; operands travel as u32 lanes holding a bf16 pair:
// - key-major panels (scores against q or dout): attn_panel_keys(n) / ATTN_KEYS blocks of
//   (attn_pairs(D), ATTN_KEYS), pair p of key j = (x[j][2p], x[j][2p+1]), zero past n / D;
// - row-pair panels (P V, dS K): (attn_row_pairs(n), D), pair (s, c) = (x[2s][c],
//   x[2s+1][c]), a missing odd row zero.
// Forward: the softmax numerators e = exp(score - max) are rounded, and the output is
// (sum_s bf16(e_s) v_s) / sum_s e_s. Backward: P = bf16(e / sum e), dP = dout v^T,
// dS = bf16(P (dP - sum P dP) scale), dq = dS k, dk += dS^T q, dv += P^T dout.
inline int64_t attn_pairs(int64_t D) { return (D + 1) / 2; }
inline int64_t attn_row_pairs(int64_t n) { return (n + 1) / 2; }
// u32 lanes of one key-major panel and of one row-pair panel for n keys.
inline int64_t attn_bf16_key_panel(int64_t n, int64_t D) { return attn_pairs(D) * attn_panel_keys(n); }
inline int64_t attn_bf16_row_panel(int64_t n, int64_t D) { return attn_row_pairs(attn_panel_keys(n)) * D; }
// Scratch floats of one bf16 forward / backward tile call for S keys.
inline int64_t attn_bf16_fwd_scratch(int64_t S, int64_t D) { return ATTN_ROWS * (2 * attn_panel_keys(S) + D); }
inline int64_t attn_bf16_bwd_scratch(int64_t S, int64_t D) { return ATTN_ROWS * (4 * attn_panel_keys(S) + 4 * D); }
// The bf16 panels live in the drivers' float scratch: the same slots as u32 lanes.
inline uint32_t* attn_u32(float* x) { return reinterpret_cast<uint32_t*>(x); }
inline const uint32_t* attn_u32(const float* x) { return reinterpret_cast<const uint32_t*>(x); }

void ops_attention_pack_keys_bf16_avx512(const float* x, int64_t n, int64_t stride, int64_t D, uint32_t* kt);
void ops_attention_pack_rows_bf16_avx512(const float* x, int64_t n, int64_t stride, int64_t D, uint32_t* xp);
// Forward tile: as ops_attention_tile_f32_avx512 with kt a key-major panel of k and vp a
// row-pair panel of v (at least n + nq - 1 keys each).
void ops_attention_tile_bf16_avx512(const float* q, const uint32_t* kt, const uint32_t* vp, float* out, int64_t nq,
                                    int64_t qstride, int64_t n, int64_t D, float scale, float* scratch);
// Backward tile: as grad_attention_bwd_tile_f32_avx512 with kt, vt key-major panels of k
// and v, kp a row-pair panel of k; dk, dv rows (n + nq - 1, D) contiguous, accumulated.
void grad_attention_bwd_tile_bf16_avx512(const float* q, const uint32_t* kt, const uint32_t* vt, const uint32_t* kp,
                                         const float* dout, float* dq, float* dk, float* dv, int64_t nq,
                                         int64_t qstride, int64_t n, int64_t D, float scale, float* scratch);
