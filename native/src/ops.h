// Llama forward ops: embedding, rmsnorm, rope, causal GQA attention, silu*mul, add,
// softmax, argmax.
//
// Each op has a checked dispatcher (no ISA suffix: validates every buffer size against
// the dims, then calls the variant for ft_active_isa()) and scalar references
// ops_<op>_f32_ref (ops_ref.cc), the specification the AVX2 / AVX-512 variants
// (ops_avx2.cc, ops_avx512.cc) are tested against. Variants take pointers that the
// dispatcher has already checked, so they only do arithmetic.
//
// Threading (dispatchers only): OpenMP over rows / (b, t, h) triples / element blocks
// with static schedules; no reduction crosses threads, so results are bit-identical
// across runs and thread counts per ISA.
#pragma once
#include "ftune.h"

// ---- checked dispatchers (ops_dispatch.cc); *_n are element counts ----

// ids (N) i32, table (V, C) f32 -> out (N, C). An id outside [0, V) is FT_ERR_ARG.
ft_status ops_embedding_f32(const int32_t* ids, size_t ids_n, const float* table, size_t table_n,
                            float* out, size_t out_n, int64_t N, int64_t V, int64_t C);
// ids (N) i32, table (V, C) bf16 bits -> out (N, C) f32.
ft_status ops_embedding_bf16(const int32_t* ids, size_t ids_n, const uint16_t* table, size_t table_n,
                             float* out, size_t out_n, int64_t N, int64_t V, int64_t C);
// x (N, C), w (C) -> out (N, C) = w * x / sqrt(mean(x^2) + eps).
ft_status ops_rmsnorm_f32(const float* x, size_t x_n, const float* w, size_t w_n, float* out, size_t out_n,
                          int64_t N, int64_t C, double eps);
// x (B, T, H, D), positions (T), inv_freq (D/2) -> out (B, T, H, D), HF rotate_half.
ft_status ops_rope_f32(const float* x, size_t x_n, const int32_t* positions, size_t positions_n,
                       const float* inv_freq, size_t inv_freq_n, float* out, size_t out_n,
                       int64_t B, int64_t T, int64_t H, int64_t D);
// ops_rope_f32, by -angle when inverse (the transpose of the rotation: grad_rope_bwd_f32).
ft_status ops_rope_rotate_f32(const float* x, size_t x_n, const int32_t* positions, size_t positions_n,
                              const float* inv_freq, size_t inv_freq_n, float* out, size_t out_n, int64_t B,
                              int64_t T, int64_t H, int64_t D, bool inverse);
// q (B, T, H, D), k, v (B, Smax, Hkv, D) with S valid rows -> out (B, T, H, D).
// Query t sits at position S - T + t and sees keys 0 ..= S - T + t. bf16 (autocast): where
// the CPU has avx512_bf16 the products run on bf16-rounded operands (attention.h's bf16
// tiles); elsewhere the f32 kernels run. positions (T) and inv_freq (D/2), when not null,
// fuse RoPE in (attention.h AttnRope): q and k are the projections before rotation, and
// the result is that of ops_rope_f32 on both first; needs S == T == Smax (no cache).
ft_status ops_attention_f32(const float* q, size_t q_n, const float* k, size_t k_n, const float* v, size_t v_n,
                            float* out, size_t out_n, int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t D,
                            int64_t Smax, int64_t S, double scale, bool bf16, const int32_t* positions,
                            size_t positions_n, const float* inv_freq, size_t inv_freq_n);
// gate (n), up (n) -> out (n) = silu(gate) * up.
ft_status ops_silu_mul_f32(const float* gate, size_t gate_n, const float* up, size_t up_n, float* out, size_t out_n,
                           int64_t n);
// a (n), b (n) -> out (n) = a + b.
ft_status ops_add_f32(const float* a, size_t a_n, const float* b, size_t b_n, float* out, size_t out_n, int64_t n);
// x (N, V) -> out (N, V) = softmax(x / temperature) per row; temperature > 0.
ft_status ops_softmax_f32(const float* x, size_t x_n, float* out, size_t out_n, int64_t N, int64_t V,
                          double temperature);
// x (N, V) -> out (N) i32: first index of the row maximum; a NaN counts as larger than
// any number (torch.argmax), so the first NaN wins. V >= 1.
ft_status ops_argmax_f32(const float* x, size_t x_n, int32_t* out, size_t out_n, int64_t N, int64_t V);

// ---- shared scalar helpers (ops_ref.cc) ----

// positions (T), inv_freq (D/2) -> cos, sin (T, D/2). Angle as HF computes it:
// float32(pos) * inv_freq in f32, then cos / sin rounded to f32.
// The (cos, sin, -sin) tables of positions (T) and inv_freq (D/2), each (T, D/2), from this
// thread's cache (ops_dispatch.cc): valid until the thread's next call; null when out of memory.
const float* ops_rope_tables(const int32_t* positions, int64_t T, const float* inv_freq, int64_t half);
void ops_rope_table(const int32_t* positions, const float* inv_freq, int64_t T, int64_t half, float* cos_t,
                    float* sin_t);

// q (D), k (n, D) at `stride` -> p (n) = exp(scale q . k_s - max), the softmax numerators
// of one query row; returns 1 / sum p rounded to f32. Shared by ops_attention_f32_ref and
// grad_attention_bwd_f32_ref.
float ops_attention_scores_f32_ref(const float* q, const float* k, int64_t n, int64_t stride, int64_t D, float scale,
                                   float* p);

// ---- variants: single-threaded row / span kernels (dims already checked) ----
// The dispatchers split the work across OpenMP threads (static schedules) and hold the
// index math (causal window, GQA head map), so the per-ISA files are arithmetic only.
// Suffixes: ref (ops_ref.cc), avx2 (ops_avx2.cc), avx512 (ops_avx512.cc). embedding is
// scalar only: a row copy gains nothing from hand-written SIMD.

// ids (N), table (V, C) -> out (N, C)
void ops_embedding_f32_ref(const int32_t* ids, const float* table, float* out, int64_t N, int64_t C);
void ops_embedding_bf16_ref(const int32_t* ids, const uint16_t* table, float* out, int64_t N, int64_t C);
// x (N, V) -> out (N)
void ops_argmax_f32_ref(const float* x, int32_t* out, int64_t N, int64_t V);
void ops_argmax_f32_avx2(const float* x, int32_t* out, int64_t N, int64_t V);
void ops_argmax_f32_avx512(const float* x, int32_t* out, int64_t N, int64_t V);

// x (N, C), w (C) -> out (N, C)
void ops_rmsnorm_f32_ref(const float* x, const float* w, float* out, int64_t N, int64_t C, float eps);
void ops_rmsnorm_f32_avx2(const float* x, const float* w, float* out, int64_t N, int64_t C, float eps);
void ops_rmsnorm_f32_avx512(const float* x, const float* w, float* out, int64_t N, int64_t C, float eps);

// n rows of D: row i of x (at x + i * xstride) rotated by cos, sin (D/2) at
// cos_t + i * tstride -> out + i * ostride. One token's H heads: tstride 0, strides D; the
// rows of one head at consecutive positions (attention's fused rope): tstride D/2.
void ops_rope_f32_ref(const float* x, int64_t xstride, const float* cos_t, const float* sin_t, int64_t tstride,
                      float* out, int64_t ostride, int64_t n, int64_t D);
void ops_rope_f32_avx2(const float* x, int64_t xstride, const float* cos_t, const float* sin_t, int64_t tstride,
                       float* out, int64_t ostride, int64_t n, int64_t D);
void ops_rope_f32_avx512(const float* x, int64_t xstride, const float* cos_t, const float* sin_t, int64_t tstride,
                         float* out, int64_t ostride, int64_t n, int64_t D);

// One query row: q (D); keys / values k, v (n, D) with rows `stride` floats apart ->
// out (D) = softmax(scale k q) v. p: scratch (n). The dispatcher runs these for decode
// (T < ATTN_ROWS) and the scalar ISA; longer T runs the tiled kernels of attention.h.
void ops_attention_f32_ref(const float* q, const float* k, const float* v, float* out, int64_t n, int64_t stride,
                           int64_t D, float scale, float* p);
void ops_attention_f32_avx2(const float* q, const float* k, const float* v, float* out, int64_t n, int64_t stride,
                            int64_t D, float scale, float* p);
void ops_attention_f32_avx512(const float* q, const float* k, const float* v, float* out, int64_t n, int64_t stride,
                              int64_t D, float scale, float* p);

// gate (n), up (n) -> out (n)
void ops_silu_mul_f32_ref(const float* gate, const float* up, float* out, int64_t n);
void ops_silu_mul_f32_avx2(const float* gate, const float* up, float* out, int64_t n);
void ops_silu_mul_f32_avx512(const float* gate, const float* up, float* out, int64_t n);

// a (n), b (n) -> out (n)
void ops_add_f32_ref(const float* a, const float* b, float* out, int64_t n);
void ops_add_f32_avx2(const float* a, const float* b, float* out, int64_t n);
void ops_add_f32_avx512(const float* a, const float* b, float* out, int64_t n);

// x (N, V) -> out (N, V); inv_temp = 1 / temperature
void ops_softmax_f32_ref(const float* x, float* out, int64_t N, int64_t V, float inv_temp);
void ops_softmax_f32_avx2(const float* x, float* out, int64_t N, int64_t V, float inv_temp);
void ops_softmax_f32_avx512(const float* x, float* out, int64_t N, int64_t V, float inv_temp);
