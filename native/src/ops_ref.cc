// Scalar references of the Llama forward ops (the specification the AVX2 / AVX-512
// variants are tested against), plus the shared RoPE cos/sin table. Plain loops, f32
// storage; sums that many terms feed (rmsnorm's mean of squares, softmax's denominator)
// accumulate in double so the reference is the most accurate of the variants.
// Single-threaded: the dispatchers (ops_dispatch.cc) split the work across threads.
#include <cmath>
#include <cstring>
#include "ops.h"
#include "parallel.h"

// ids (N), table (V, C) f32 -> out (N, C). ids were range-checked by the dispatcher.
void ops_embedding_f32_ref(const int32_t* ids, const float* table, float* out, int64_t N, int64_t C) {
  for (int64_t i = 0; i < N; i++) std::memcpy(out + i * C, table + (int64_t)ids[i] * C, (size_t)C * sizeof(float));
}

// ids (N), table (V, C) bf16 -> out (N, C) f32 (bf16 -> f32 is exact: a 16-bit shift).
void ops_embedding_bf16_ref(const int32_t* ids, const uint16_t* table, float* out, int64_t N, int64_t C) {
  for (int64_t i = 0; i < N; i++) {
    const uint16_t* row = table + (int64_t)ids[i] * C;
    for (int64_t c = 0; c < C; c++) out[i * C + c] = ft_bf16_to_f32(row[c]);
  }
}

// x (N, V) -> out (N): first index of the maximum; the first NaN wins (torch.argmax).
void ops_argmax_f32_ref(const float* x, int32_t* out, int64_t N, int64_t V) {
  for (int64_t i = 0; i < N; i++) {
    const float* row = x + i * V;
    int64_t best = 0;
    for (int64_t j = 0; j < V; j++) {
      if (std::isnan(row[j])) {
        best = j;
        break;
      }
      if (row[j] > row[best]) best = j;
    }
    out[i] = (int32_t)best;
  }
}

// x (N, C), w (C) -> out (N, C). HF LlamaRMSNorm: variance = mean(x^2);
// x * rsqrt(variance + eps) * w, all in f32 (the mean accumulated in double here).
void ops_rmsnorm_f32_ref(const float* x, const float* w, float* out, int64_t N, int64_t C, float eps) {
  for (int64_t i = 0; i < N; i++) {
    const float* xr = x + i * C;
    double ss = 0;
    for (int64_t c = 0; c < C; c++) ss += (double)xr[c] * xr[c];
    const float r = 1.0f / std::sqrt((float)(ss / (double)C) + eps);
    for (int64_t c = 0; c < C; c++) out[i * C + c] = w[c] * (xr[c] * r);
  }
}

// positions (T), inv_freq (D/2) -> cos, sin (T, D/2). HF LlamaRotaryEmbedding: freqs =
// inv_freq.float() @ position_ids.float() (an f32 product), then cos / sin in f32.
void ops_rope_table(const int32_t* positions, const float* inv_freq, int64_t T, int64_t half, float* cos_t,
                    float* sin_t) {
  // Two libm calls per entry (T * D/2 of them: 16K for a 512-token batch) are worth the
  // threads; every entry is computed alone, so the table does not depend on their number.
  ft_parallel_for(T, T * half >= 4096, [&](int64_t t) {
    const float pos = (float)positions[t];
    for (int64_t j = 0; j < half; j++) {
      const float angle = pos * inv_freq[j];
      cos_t[t * half + j] = (float)std::cos((double)angle);
      sin_t[t * half + j] = (float)std::sin((double)angle);
    }
  });
}

// n rows (ops.h). rotate_half: for j < D/2, out[j] = x[j] cos - x[j + D/2] sin,
// out[j + D/2] = x[j + D/2] cos + x[j] sin, as separate f32 multiplies and adds (no FMA):
// exactly the operations HF performs.
void ops_rope_f32_ref(const float* x, int64_t xstride, const float* cos_t, const float* sin_t, int64_t tstride,
                      float* out, int64_t ostride, int64_t n, int64_t D) {
  const int64_t half = D / 2;
  for (int64_t i = 0; i < n; i++) {
    const float *xr = x + i * xstride, *cr = cos_t + i * tstride, *sr = sin_t + i * tstride;
    float* o = out + i * ostride;
    for (int64_t j = 0; j < half; j++) {
      const float x1 = xr[j], x2 = xr[j + half];
      const float a = x1 * cr[j], b = x2 * sr[j], c = x2 * cr[j], d = x1 * sr[j];
      o[j] = a - b;
      o[j + half] = c + d;
    }
  }
}

float ops_attention_scores_f32_ref(const float* q, const float* k, int64_t n, int64_t stride, int64_t D, float scale,
                                   float* p) {
  float m = -INFINITY;
  for (int64_t s = 0; s < n; s++) {
    float dot = 0;
    for (int64_t d = 0; d < D; d++) dot += q[d] * k[s * stride + d];
    p[s] = dot * scale;
    if (p[s] > m) m = p[s];
  }
  double sum = 0;
  for (int64_t s = 0; s < n; s++) {
    p[s] = std::exp(p[s] - m);
    sum += p[s];
  }
  return (float)(1.0 / sum);
}

// One query row: q (D), k, v (n, D) at `stride` -> out (D). Scores into p, a
// max-subtracted softmax, then the probability-weighted sum of value rows.
void ops_attention_f32_ref(const float* q, const float* k, const float* v, float* out, int64_t n, int64_t stride,
                           int64_t D, float scale, float* p) {
  const float inv = ops_attention_scores_f32_ref(q, k, n, stride, D, scale, p);
  for (int64_t d = 0; d < D; d++) out[d] = 0;
  for (int64_t s = 0; s < n; s++) {
    const float ps = p[s] * inv;
    for (int64_t d = 0; d < D; d++) out[d] += ps * v[s * stride + d];
  }
}

// gate (n), up (n) -> out (n) = gate / (1 + exp(-gate)) * up.
void ops_silu_mul_f32_ref(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

// a (n), b (n) -> out (n)
void ops_add_f32_ref(const float* a, const float* b, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

// x (N, V) -> out (N, V) = exp((x - max) / temperature) / sum, per row. A row holding a
// NaN comes out all NaN; -inf entries come out 0 (a row of only -inf comes out NaN).
void ops_softmax_f32_ref(const float* x, float* out, int64_t N, int64_t V, float inv_temp) {
  for (int64_t i = 0; i < N; i++) {
    const float* xr = x + i * V;
    float* o = out + i * V;
    float m = -INFINITY;
    bool nan = false;
    for (int64_t j = 0; j < V; j++) {
      if (xr[j] > m) m = xr[j];
      nan = nan || std::isnan(xr[j]);
    }
    if (nan) m = NAN;
    double sum = 0;
    for (int64_t j = 0; j < V; j++) {
      o[j] = std::exp((xr[j] - m) * inv_temp);
      sum += o[j];
    }
    const float inv = (float)(1.0 / sum);
    for (int64_t j = 0; j < V; j++) o[j] *= inv;
  }
}
