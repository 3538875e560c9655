// Scalar 4-bit quantization kernels: the specification of the AVX2/AVX-512 variants
// (quant_avx2.cc, quant_avx512.cc), element for element what bitsandbytes computes and
// what src/quant/blockwise.ts computes in TypeScript. Compiled without ISA flags, so no
// FMA contraction changes the f32 roundings here.
#include <cmath>
#include <cstdlib>
#include "quant.h"

// bitsandbytes functional.py get_4bit_type("nf4") (= kernels.cu's LUT).
const float q4_nf4_map[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
    0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
};
// get_4bit_type("fp4"): magnitudes by bit pattern 0, 0.0625, 8, 12, 4, 6, 2, 3 over 12; sign 0b1000.
const float q4_fp4_map[16] = {
    0.0f / 12, 0.0625f / 12, 8.0f / 12, 12.0f / 12, 4.0f / 12, 6.0f / 12, 2.0f / 12, 3.0f / 12,
    -0.0f / 12, -0.0625f / 12, -8.0f / 12, -12.0f / 12, -4.0f / 12, -6.0f / 12, -2.0f / 12, -3.0f / 12,
};

namespace {

q4_thresholds make_thresholds() {
  q4_thresholds t;
  for (int i = 0; i < 15; i++) t.nf4[i] = (q4_nf4_map[i] + q4_nf4_map[i + 1]) * 0.5f;
  static const int32_t order[8] = {0, 1, 6, 7, 4, 5, 2, 3};  // FP4 magnitudes sorted
  for (int i = 0; i < 8; i++) t.fp4_code[i] = t.fp4_code_x2[i] = t.fp4_code_x2[i + 8] = order[i];
  for (int i = 0; i < 7; i++) t.fp4[i] = (q4_fp4_map[order[i]] + q4_fp4_map[order[i + 1]]) * 0.5f;
  return t;
}

const q4_thresholds g_thresholds = make_thresholds();

}  // namespace

const q4_thresholds& q4_thresholds_get() { return g_thresholds; }

void q4_absmax_run(const q4_weight& w, int64_t b0, int64_t nb, float* out) {
  if (w.absmax) {
    for (int64_t j = 0; j < nb; j++) out[j] = w.absmax[b0 + j];
    return;
  }
  int64_t g = b0 / w.nblocksize, r = b0 % w.nblocksize;
  for (int64_t j = 0; j < nb; j++) {
    const float scaled = w.nest_map[w.qabsmax[b0 + j]] * w.nest_absmax[g];
    out[j] = scaled + w.offset;  // two f32 roundings (this file has no FMA contraction)
    if (++r == w.nblocksize) {
      r = 0;
      g++;
    }
  }
}

float q4_reciprocal(float absmax) { return 1.0f / (absmax > 1e-38f ? absmax : 1e-38f); }

// x (len) -> out (ceil(len/2)); len odd only for the last block: the pad element is 0.0.
float q4_quant_block_ref(const float* x, int64_t len, int32_t type, uint8_t* out) {
  float amax = 0.0f;
  for (int64_t i = 0; i < len; i++) amax = std::fmax(amax, std::fabs(x[i]));
  q4_quant_pairs(x, 0, len, q4_reciprocal(amax), type, out);
  return amax;
}

void q4_quant_pairs(const float* x, int64_t i, int64_t len, float r, int32_t type, uint8_t* out) {
  const q4_thresholds& t = q4_thresholds_get();
  for (; i < len; i += 2) {
    const float s0 = std::fmin(1.0f, std::fmax(-1.0f, x[i] * r));
    const float s1 = i + 1 < len ? std::fmin(1.0f, std::fmax(-1.0f, x[i + 1] * r)) : 0.0f;
    out[i / 2] = (uint8_t)(q4_code(s0, type, t) << 4 | q4_code(s1, type, t));
  }
}

// Elements [i0, i0+len) -> out: per block a 16-entry table of map[q] * absmax (rounded to
// bf16 for the bf16 kinds), then one lookup per element.
void q4_decode_ref(const q4_weight& w, int64_t i0, int64_t len, int32_t kind, void* out) {
  if (len <= 0) return;
  int64_t i = i0;
  const int64_t end = i0 + len, last = (end - 1) / w.blocksize;
  q4_block_walk walk{i0 / w.blocksize, 0, 0, {}};
  for (; i < end; walk.b++) {
    const int64_t seg = (walk.b + 1) * w.blocksize < end ? (walk.b + 1) * w.blocksize : end;
    const float scale = q4_walk_scale(w, walk, last);
    float lut[16];
    for (int q = 0; q < 16; q++) lut[q] = kind == Q4_OUT_F32 ? w.map[q] * scale : q4_round_bf16(w.map[q] * scale);
    for (; i < seg; i++) q4_put(w.codes, i, i0, lut, kind, out);
  }
}

ft_status q4_linear_bwd_ref(const q4_weight& w, const void* dy, bool bf16, float* dx, int64_t M) {
  const int64_t N = w.N, K = w.K;
  float* row = (float*)std::malloc((size_t)(K > 0 ? K : 1) * 4);
  if (!row) return FT_ERR_ALLOC;
  for (int64_t i = 0; i < M * K; i++) dx[i] = 0.0f;
  for (int64_t n = 0; n < N; n++) {
    q4_decode_ref(w, n * K, K, bf16 ? Q4_OUT_F32_BF16 : Q4_OUT_F32, row);
    for (int64_t m = 0; m < M; m++) {
      const float g = bf16 ? ft_bf16_to_f32(((const uint16_t*)dy)[m * N + n]) : ((const float*)dy)[m * N + n];
      for (int64_t k = 0; k < K; k++) dx[m * K + k] += g * row[k];
    }
  }
  std::free(row);
  return FT_OK;
}
