// Backward ops and in-place updates for training: sum of rows (bias gradient),
// embedding / rmsnorm / rope / attention / silu*mul backward, cross-entropy, dropout,
// scaled adds, sum of squares (gradient norm), AdamW.
//
// Each op has a checked dispatcher (no ISA suffix, grad_dispatch.cc: validates every dim
// and buffer size before touching memory, then runs the variant of ft_active_isa()) and
// a scalar reference grad_<op>_f32_ref (grad_ref.cc) that the AVX2 / AVX-512 variants
// (grad_avx2.cc, grad_avx512.cc) are tested against.
//
// Determinism: OpenMP static schedules over work items that each own their outputs, and
// every reduction has a fixed order independent of the thread count:
// - sum_rows, rmsnorm dw and embedding backward split the C columns across threads; each
//   column sums its rows in row order;
// - attention backward splits over (b, kv head): one thread owns each dk / dv slice and
//   adds the query heads of its group, then the queries t, in order;
// - sum_squares sums fixed blocks of GRAD_SS_BLOCK elements, then the block sums in order.
// So results are bit-identical across runs and thread counts for a given ISA.
#pragma once
#include "ftune.h"

// Elements per block of grad_sum_squares_f32 (the fixed reduction tree's leaves).
constexpr int64_t GRAD_SS_BLOCK = 4096;

// ---- checked dispatchers (grad_dispatch.cc); *_n are element counts ----

// x (M, N) -> dst (N) = [dst +] column sums of x.
ft_status grad_sum_rows_f32(const float* x, size_t x_n, float* dst, size_t dst_n, int64_t M, int64_t N,
                            bool accumulate);
// ids (N) in [0, V), dout (N, C) -> dtable (V, C) += dout rows scattered to ids.
ft_status grad_embedding_bwd_f32(const int32_t* ids, size_t ids_n, const float* dout, size_t dout_n, float* dtable,
                                 size_t dtable_n, int64_t N, int64_t V, int64_t C);
// x (N, C), w (C), dout (N, C) -> dx (N, C), or dx += when accumulate (the residual
// stream's gradient so far); dw (C) += sum over rows (dw may be null).
ft_status grad_rmsnorm_bwd_f32(const float* x, size_t x_n, const float* w, size_t w_n, const float* dout,
                               size_t dout_n, float* dx, size_t dx_n, float* dw, size_t dw_n, int64_t N, int64_t C,
                               double eps, bool accumulate);
// dout (B, T, H, D), positions (T), inv_freq (D/2) -> dx (B, T, H, D): rope by -angle.
ft_status grad_rope_bwd_f32(const float* dout, size_t dout_n, const int32_t* positions, size_t positions_n,
                            const float* inv_freq, size_t inv_freq_n, float* dx, size_t dx_n, int64_t B, int64_t T,
                            int64_t H, int64_t D);
// q (B, T, H, D), k, v (B, Smax, Hkv, D) with S valid rows, dout (B, T, H, D) ->
// dq (B, T, H, D), dk, dv (B, Smax, Hkv, D) (overwritten; rows >= S are zero). bf16: as
// ops_attention_f32's. positions, inv_freq: RoPE fused in as ops_attention_f32's; dq and
// dk are then the gradients of the projections before rotation (attention, then
// grad_rope_bwd_f32 on dq and dk).
ft_status grad_attention_bwd_f32(const float* q, size_t q_n, const float* k, size_t k_n, const float* v, size_t v_n,
                                 const float* dout, size_t dout_n, float* dq, size_t dq_n, float* dk, size_t dk_n,
                                 float* dv, size_t dv_n, int64_t B, int64_t T, int64_t H, int64_t Hkv, int64_t D,
                                 int64_t Smax, int64_t S, double scale, bool bf16, const int32_t* positions,
                                 size_t positions_n, const float* inv_freq, size_t inv_freq_n);
// gate, up, dout (n) -> dgate, dup (n) for out = silu(gate) * up.
ft_status grad_silu_mul_bwd_f32(const float* gate, size_t gate_n, const float* up, size_t up_n, const float* dout,
                                size_t dout_n, float* dgate, size_t dgate_n, float* dup, size_t dup_n, int64_t n);
// logits (N, V) overwritten with grad_scale * (softmax - onehot(label)); loss (N) f64 =
// logsumexp - logit[label]. label -100: zero row, loss 0; any other label outside
// [0, V) is FT_ERR_ARG (checked before anything is written).
// predicted (N, may be null) gets each row's argmax first (ops_argmax_f32), the token
// accuracy without a second pass over the logits from memory.
ft_status grad_cross_entropy_f32(float* logits, size_t logits_n, const int32_t* labels, size_t labels_n,
                                 double* loss, size_t loss_n, int64_t N, int64_t V, double grad_scale,
                                 int32_t* predicted, size_t predicted_n);
// x (n) -> out (n): element i kept iff grad_dropout_uniform(seed, i) >= p, then scaled by
// (float)(1 / (1 - p)); 0 <= p < 1, 0 <= seed < 2^53.
ft_status grad_dropout_f32(const float* x, size_t x_n, float* out, size_t out_n, int64_t n, double p, int64_t seed);
// a, b (n) -> out (n) = a + (float)s * b. out may alias a (dst += s * src).
ft_status grad_add_scaled_f32(const float* a, size_t a_n, const float* b, size_t b_n, float* out, size_t out_n,
                              int64_t n, double s);
// x (n) *= (float)s.
ft_status grad_scale_f32(float* x, size_t x_n, int64_t n, double s);
// x (n) -> *out = sum of x^2 in double (fixed blocks, block sums in order).
ft_status grad_sum_squares_f32(const float* x, size_t x_n, int64_t n, double* out);
// One torch.optim.AdamW step over param, grad, m, v (n), see grad_adamw_consts.
ft_status grad_adamw_f32(float* param, size_t param_n, const float* grad, size_t grad_n, float* m, size_t m_n,
                         float* v, size_t v_n, int64_t n, double lr, double beta1, double beta2, double eps,
                         double weight_decay, int64_t step, double grad_scale);

// ---- shared scalar definitions (grad_ref.cc) ----

// Counter-based dropout hash (splitmix64's finaliser over the counter seed + (i + 1) *
// golden gamma, Steele et al. 2014): the top 24 bits of the mix as a uniform in [0, 1).
// src/backend/ref/grad.ts computes the same bits with BigInt.
inline uint64_t grad_splitmix64(uint64_t seed, uint64_t i) {
  uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
// Threshold form of "u >= p" with u = (z >> 40) / 2^24: kept iff (z >> 40) >= ceil(p 2^24).
inline uint32_t grad_dropout_threshold(double p) {
  double t = p * 16777216.0;
  uint32_t c = (uint32_t)t;
  return (double)c < t ? c + 1 : c;
}

// AdamW scalars rounded to f32 the way torch's CPU kernels round Python scalars.
struct grad_adamw_consts {
  float grad_scale;  // g = grad * grad_scale
  float decay;       // 1 - lr * weight_decay (double, then f32)
  float beta1, one_minus_beta1, beta2, one_minus_beta2;
  float bc2_sqrt;    // sqrt(1 - beta2^step)
  float eps;
  float neg_step;    // -lr / (1 - beta1^step)
};

// ---- variants: single-threaded spans (dims already checked) ----

// One row: x, w, dout (C) -> dx (C), or dx += when accumulate; *rstd = 1 / sqrt(mean(x^2) + eps).
void grad_rmsnorm_bwd_f32_ref(const float* x, const float* w, const float* dout, float* dx, float* rstd, int64_t C,
                              float eps, bool accumulate);
void grad_rmsnorm_bwd_f32_avx2(const float* x, const float* w, const float* dout, float* dx, float* rstd, int64_t C,
                               float eps, bool accumulate);
void grad_rmsnorm_bwd_f32_avx512(const float* x, const float* w, const float* dout, float* dx, float* rstd, int64_t C,
                                 float eps, bool accumulate);
// Columns [c0, c1) of dw (C) += sum over rows i of dout[i, c] x[i, c] rstd[i]; x, dout (N, C).
void grad_rmsnorm_dw_f32_ref(const float* x, const float* dout, const float* rstd, float* dw, int64_t N, int64_t C,
                             int64_t c0, int64_t c1);
void grad_rmsnorm_dw_f32_avx2(const float* x, const float* dout, const float* rstd, float* dw, int64_t N, int64_t C,
                             int64_t c0, int64_t c1);
void grad_rmsnorm_dw_f32_avx512(const float* x, const float* dout, const float* rstd, float* dw, int64_t N, int64_t C,
                             int64_t c0, int64_t c1);

// One query row: q, dout (D); k, v (n, D) at `stride` -> dq (D) (overwritten);
// dk, dv (n, D) at `stride` accumulated. p: scratch (2n). The dispatcher runs these for
// the scalar ISA only; AVX2 / AVX-512 run the tiled kernels of attention.h.
void grad_attention_bwd_f32_ref(const float* q, const float* k, const float* v, const float* dout, float* dq,
                                float* dk, float* dv, int64_t n, int64_t stride, int64_t D, float scale, float* p);
void grad_attention_bwd_f32_avx2(const float* q, const float* k, const float* v, const float* dout, float* dq,
                                 float* dk, float* dv, int64_t n, int64_t stride, int64_t D, float scale, float* p);
void grad_attention_bwd_f32_avx512(const float* q, const float* k, const float* v, const float* dout, float* dq,
                                   float* dk, float* dv, int64_t n, int64_t stride, int64_t D, float scale, float* p);
// gate, up, dout (n) -> dgate, dup (n)
void grad_silu_mul_bwd_f32_ref(const float* gate, const float* up, const float* dout, float* dgate, float* dup,
                               int64_t n);
void grad_silu_mul_bwd_f32_avx2(const float* gate, const float* up, const float* dout, float* dgate, float* dup,
                                int64_t n);
void grad_silu_mul_bwd_f32_avx512(const float* gate, const float* up, const float* dout, float* dgate, float* dup,
                                  int64_t n);

// One row: logits (V) -> gradient in place; returns the loss. label in [0, V). predicted
// (may be null) <- the logits' argmax, as ops_argmax_f32 (first maximum, or first NaN).
double grad_cross_entropy_f32_ref(float* x, int64_t V, int32_t label, double grad_scale, int32_t* predicted);
double grad_cross_entropy_f32_avx2(float* x, int64_t V, int32_t label, double grad_scale, int32_t* predicted);
double grad_cross_entropy_f32_avx512(float* x, int64_t V, int32_t label, double grad_scale, int32_t* predicted);

// x (n) -> out (n), counters start .. start + n - 1; keep iff (hash >> 40) >= threshold.
void grad_dropout_f32_ref(const float* x, float* out, int64_t n, uint64_t start, uint64_t seed, uint32_t threshold,
                          float scale);
void grad_dropout_f32_avx2(const float* x, float* out, int64_t n, uint64_t start, uint64_t seed, uint32_t threshold,
                           float scale);
void grad_dropout_f32_avx512(const float* x, float* out, int64_t n, uint64_t start, uint64_t seed,
                             uint32_t threshold, float scale);

// a, b (n) -> out (n) = a + s * b (out may alias a)
void grad_add_scaled_f32_ref(const float* a, const float* b, float* out, int64_t n, float s);
void grad_add_scaled_f32_avx2(const float* a, const float* b, float* out, int64_t n, float s);
void grad_add_scaled_f32_avx512(const float* a, const float* b, float* out, int64_t n, float s);

// x (n) *= s
void grad_scale_f32_ref(float* x, int64_t n, float s);
void grad_scale_f32_avx2(float* x, int64_t n, float s);
void grad_scale_f32_avx512(float* x, int64_t n, float s);

// x (n) -> sum of x^2 in double (one block; lanes added in a fixed order).
double grad_sum_squares_f32_ref(const float* x, int64_t n);
double grad_sum_squares_f32_avx2(const float* x, int64_t n);
double grad_sum_squares_f32_avx512(const float* x, int64_t n);

// param, grad, m, v (n): one AdamW step with the f32 scalars of c.
void grad_adamw_f32_ref(float* param, const float* grad, float* m, float* v, int64_t n, const grad_adamw_consts* c);
void grad_adamw_f32_avx2(float* param, const float* grad, float* m, float* v, int64_t n, const grad_adamw_consts* c);
void grad_adamw_f32_avx512(float* param, const float* grad, float* m, float* v, int64_t n,
                           const grad_adamw_consts* c);
