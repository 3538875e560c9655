// The key / value panel packing of the tiled attention kernels (attention.h): plain
// (transposing) copies, shared by every ISA (it is D * S copies against the tile's
// 2 * T * S * D flops, so hand-written SIMD would gain nothing).
#include <cstring>
#include "attention.h"

// k (n, D) at stride -> kt blocks of (D, ATTN_KEYS), keys >= n zero. d outer, keys inner:
// contiguous writes, and the 32 source rows of a block stay in L1 across d.
void ops_attention_pack_f32_ref(const float* k, int64_t n, int64_t stride, int64_t D, float* kt) {
  const int64_t blocks = attn_panel_keys(n) / ATTN_KEYS;
  for (int64_t jb = 0; jb < blocks; jb++) {
    const int64_t s0 = jb * ATTN_KEYS, len = n - s0 < ATTN_KEYS ? n - s0 : ATTN_KEYS;
    const float* src = k + s0 * stride;
    float* dst = kt + jb * D * ATTN_KEYS;
    for (int64_t d = 0; d < D; d++) {
      for (int64_t j = 0; j < len; j++) dst[d * ATTN_KEYS + j] = src[j * stride + d];
      for (int64_t j = len; j < ATTN_KEYS; j++) dst[d * ATTN_KEYS + j] = 0.0f;
    }
  }
}

// x (n, D) at stride -> dst (n, D) contiguous.
void ops_attention_gather_f32_ref(const float* x, int64_t n, int64_t stride, int64_t D, float* dst) {
  for (int64_t s = 0; s < n; s++) std::memcpy(dst + s * D, x + s * stride, (size_t)D * sizeof(float));
}

// src (n, D) contiguous -> x (n, D) at stride.
void ops_attention_scatter_f32_ref(const float* src, int64_t n, int64_t stride, int64_t D, float* x) {
  for (int64_t s = 0; s < n; s++) std::memcpy(x + s * stride, src + s * D, (size_t)D * sizeof(float));
}
