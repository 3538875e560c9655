// Scalar references of the backward ops and in-place updates (the specification the
// AVX2 / AVX-512 variants are tested against). Plain loops over f32 storage; long sums
// accumulate in double. Single-threaded: the dispatchers (grad_dispatch.cc) split work.
#include <cmath>
#include "grad.h"
#include "ops.h"

// One row: x, w, dout (C) -> dx (C). With r = 1 / sqrt(mean(x^2) + eps) (as the forward
// computes it) and y = w x r: dx = r w dy - x r^3 / C * sum_k(w_k dy_k x_k).
void grad_rmsnorm_bwd_f32_ref(const float* x, const float* w, const float* dout, float* dx, float* rstd, int64_t C,
                              float eps, bool accumulate) {
  double ss = 0, dot = 0;
  for (int64_t c = 0; c < C; c++) {
    ss += (double)x[c] * x[c];
    dot += (double)w[c] * dout[c] * x[c];
  }
  const float r = 1.0f / std::sqrt((float)(ss / (double)C) + eps);
  const float coef = (float)((double)r * r * r * dot / (double)C);
  for (int64_t c = 0; c < C; c++) {
    const float v = r * (w[c] * dout[c]) - coef * x[c];
    dx[c] = accumulate ? dx[c] + v : v;
  }
  *rstd = r;
}

// dw[c] += sum_i dout[i, c] x[i, c] rstd[i] for c in [c0, c1), rows added in order.
void grad_rmsnorm_dw_f32_ref(const float* x, const float* dout, const float* rstd, float* dw, int64_t N, int64_t C,
                             int64_t c0, int64_t c1) {
  double acc[64];
  for (int64_t b = c0; b < c1; b += 64) {
    const int64_t e = b + 64 < c1 ? b + 64 : c1;
    for (int64_t c = b; c < e; c++) acc[c - b] = 0;
    for (int64_t i = 0; i < N; i++) {
      const float* xr = x + i * C;
      const float* dr = dout + i * C;
      const double r = rstd[i];
      for (int64_t c = b; c < e; c++) acc[c - b] += (double)dr[c] * xr[c] * r;
    }
    for (int64_t c = b; c < e; c++) dw[c] += (float)acc[c - b];
  }
}

// One query row (see grad.h). Recomputes p = softmax(scale k q) over the n visible keys,
// dp_s = dout . v_s, ds_s = p_s (dp_s - sum_s' p_s' dp_s'); then dq = scale sum ds_s k_s,
// dk_s += scale ds_s q, dv_s += p_s dout.
void grad_attention_bwd_f32_ref(const float* q, const float* k, const float* v, const float* dout, float* dq,
                                float* dk, float* dv, int64_t n, int64_t stride, int64_t D, float scale, float* p) {
  float* dp = p + n;
  const float inv = ops_attention_scores_f32_ref(q, k, n, stride, D, scale, p);
  double delta = 0;
  for (int64_t s = 0; s < n; s++) {
    p[s] *= inv;
    float dot = 0;
    for (int64_t d = 0; d < D; d++) dot += dout[d] * v[s * stride + d];
    dp[s] = dot;
    delta += (double)p[s] * dot;
  }
  const float fdelta = (float)delta;
  for (int64_t d = 0; d < D; d++) dq[d] = 0;
  for (int64_t s = 0; s < n; s++) {
    const float a = p[s] * (dp[s] - fdelta) * scale;
    for (int64_t d = 0; d < D; d++) {
      dq[d] += a * k[s * stride + d];
      dk[s * stride + d] += a * q[d];
      dv[s * stride + d] += p[s] * dout[d];
    }
  }
}

// s = sigmoid(g): d up = dy g s; d gate = dy up s (1 + g (1 - s)).
void grad_silu_mul_bwd_f32_ref(const float* gate, const float* up, const float* dout, float* dgate, float* dup,
                               int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    const float g = gate[i];
    const float s = 1.0f / (1.0f + std::exp(-g));
    dup[i] = dout[i] * (g * s);
    dgate[i] = dout[i] * up[i] * (s * (1.0f + g * (1.0f - s)));
  }
}

// One row: m = max, sum = sum exp(x - m) in double, loss = m + log(sum) - x[label];
// x <- exp(x - m) * (float)(grad_scale / sum), then x[label] -= (float)grad_scale.
double grad_cross_entropy_f32_ref(float* x, int64_t V, int32_t label, double grad_scale, int32_t* predicted) {
  if (predicted) ops_argmax_f32_ref(x, predicted, 1, V);
  float m = -INFINITY;
  for (int64_t j = 0; j < V; j++) m = x[j] > m ? x[j] : m;
  const float target = x[label];
  double sum = 0;
  for (int64_t j = 0; j < V; j++) {
    x[j] = std::exp(x[j] - m);
    sum += x[j];
  }
  const float f = (float)(grad_scale / sum);
  for (int64_t j = 0; j < V; j++) x[j] *= f;
  x[label] -= (float)grad_scale;
  return (double)m + std::log(sum) - (double)target;
}

void grad_dropout_f32_ref(const float* x, float* out, int64_t n, uint64_t start, uint64_t seed, uint32_t threshold,
                          float scale) {
  for (int64_t i = 0; i < n; i++) {
    const uint32_t u = (uint32_t)(grad_splitmix64(seed, start + (uint64_t)i) >> 40);
    out[i] = u >= threshold ? x[i] * scale : 0.0f;
  }
}

void grad_add_scaled_f32_ref(const float* a, const float* b, float* out, int64_t n, float s) {
  for (int64_t i = 0; i < n; i++) out[i] = a[i] + s * b[i];
}

void grad_scale_f32_ref(float* x, int64_t n, float s) {
  for (int64_t i = 0; i < n; i++) x[i] *= s;
}

// Squares of f32 values are exact in double; 8 partial sums (lane i % 8), added in order.
double grad_sum_squares_f32_ref(const float* x, int64_t n) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t i = 0; i < n; i++) acc[i % 8] += (double)x[i] * x[i];
  double s = 0;
  for (int j = 0; j < 8; j++) s += acc[j];
  return s;
}

// torch.optim.AdamW (_single_tensor_adamw), every operation in f32 in torch's order:
// param *= decay; m = b1 m + (1 - b1) g; v = b2 v + ((1 - b2) g) g;
// param += (neg_step m) / (sqrt(v) / bc2_sqrt + eps).
void grad_adamw_f32_ref(float* param, const float* grad, float* m, float* v, int64_t n, const grad_adamw_consts* c) {
  for (int64_t i = 0; i < n; i++) {
    const float g = grad[i] * c->grad_scale;
    const float p = param[i] * c->decay;
    const float mi = c->beta1 * m[i] + c->one_minus_beta1 * g;
    const float vi = c->beta2 * v[i] + (c->one_minus_beta2 * g) * g;
    const float denom = std::sqrt(vi) / c->bc2_sqrt + c->eps;
    param[i] = p + (c->neg_step * mi) / denom;
    m[i] = mi;
    v[i] = vi;
  }
}
