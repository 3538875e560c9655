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

// Query rows per tile and keys per packed block.
constexpr int64_t ATTN_ROWS = 12;
constexpr int64_t ATTN_KEYS = 32;

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
