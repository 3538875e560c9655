// AVX2 4-bit kernels: quantization 8 values at a time (threshold counts from compare
// masks) and decoding 8 elements per step, with the 16 scaled code values split over two
// ymm lookups (vpermps uses 3 index bits; bit 3 picks the half). Same results as
// quant_ref.cc bit for bit (exact compares and the same f32 multiplies only).
#include <immintrin.h>
#include <cmath>
#include <cstring>
#include "quant.h"

namespace {

// v rounded to bf16 (nearest even) and widened back; finite values only.
inline __m256 round_bf16(__m256 v) {
  const __m256i u = _mm256_castps_si256(v);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  const __m256i r = _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb);
  return _mm256_castsi256_ps(_mm256_and_si256(r, _mm256_set1_epi32((int)0xffff0000u)));
}

// Codes (8 dword lanes) of the scaled, clamped values s.
inline __m256i codes8(__m256 s, int32_t type, const q4_thresholds& t) {
  __m256i cnt = _mm256_setzero_si256();
  if (type == Q4_NF4) {
    for (int i = 0; i < 15; i++) cnt = _mm256_sub_epi32(cnt, _mm256_castps_si256(_mm256_cmp_ps(s, _mm256_set1_ps(t.nf4[i]), _CMP_GT_OQ)));
    return cnt;
  }
  const __m256 neg = _mm256_cmp_ps(s, _mm256_setzero_ps(), _CMP_LT_OQ);
  const __m256 a = _mm256_and_ps(s, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)));
  for (int i = 0; i < 7; i++) cnt = _mm256_sub_epi32(cnt, _mm256_castps_si256(_mm256_cmp_ps(a, _mm256_set1_ps(t.fp4[i]), _CMP_GT_OQ)));
  const __m256i code = _mm256_permutevar8x32_epi32(_mm256_loadu_si256((const __m256i*)t.fp4_code), cnt);
  return _mm256_or_si256(code, _mm256_and_si256(_mm256_castps_si256(neg), _mm256_set1_epi32(8)));
}

}  // namespace

// x (len) -> out (ceil(len/2)) packed codes; returns absmax
float q4_quant_block_avx2(const float* x, int64_t len, int32_t type, uint8_t* out) {
  const q4_thresholds& t = q4_thresholds_get();
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 vmax = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= len; i += 8) vmax = _mm256_max_ps(vmax, _mm256_and_ps(_mm256_loadu_ps(x + i), absmask));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, vmax);
  float amax = 0.0f;
  for (int j = 0; j < 8; j++) amax = lanes[j] > amax ? lanes[j] : amax;
  for (int64_t j = i; j < len; j++) amax = std::fmax(amax, std::fabs(x[j]));
  const float r = q4_reciprocal(amax);
  const __m256 vr = _mm256_set1_ps(r), hi = _mm256_set1_ps(1.0f), lo = _mm256_set1_ps(-1.0f);
  for (i = 0; i + 8 <= len; i += 8) {
    const __m256 s = _mm256_min_ps(hi, _mm256_max_ps(lo, _mm256_mul_ps(_mm256_loadu_ps(x + i), vr)));
    alignas(32) int32_t c[8];
    _mm256_store_si256((__m256i*)c, codes8(s, type, t));
    for (int j = 0; j < 4; j++) out[i / 2 + j] = (uint8_t)(c[2 * j] << 4 | c[2 * j + 1]);
  }
  q4_quant_pairs(x, i, len, r, type, out);
  return amax;
}

// Elements [i0, i0+len) of w -> out (f32 values or bf16 patterns), 8 per step.
void q4_decode_avx2(const q4_weight& w, int64_t i0, int64_t len, int32_t kind, void* out) {
  float* of = (float*)out;
  uint16_t* oh = (uint16_t*)out;
  const __m256i low4 = _mm256_set1_epi64x(15);
  const __m256 map0 = _mm256_loadu_ps(w.map), map1 = _mm256_loadu_ps(w.map + 8);
  if (len <= 0) return;
  int64_t i = i0;
  const int64_t end = i0 + len, last = (end - 1) / w.blocksize;
  q4_block_walk walk{i0 / w.blocksize, 0, 0, {}};
  for (; i < end; walk.b++) {
    const int64_t seg = (walk.b + 1) * w.blocksize < end ? (walk.b + 1) * w.blocksize : end;
    const __m256 scale = _mm256_set1_ps(q4_walk_scale(w, walk, last));
    __m256 lut0 = _mm256_mul_ps(map0, scale), lut1 = _mm256_mul_ps(map1, scale);
    if (kind != Q4_OUT_F32) {
      lut0 = round_bf16(lut0);
      lut1 = round_bf16(lut1);
    }
    alignas(32) float lutv[16];
    _mm256_store_ps(lutv, lut0);
    _mm256_store_ps(lutv + 8, lut1);
    if ((i & 1) && i < seg) q4_put(w.codes, i++, i0, lutv, kind, out);  // odd start: a low nibble
    for (; i + 8 <= seg; i += 8) {
      int32_t four;
      std::memcpy(&four, w.codes + (i >> 1), 4);
      const __m256i q = _mm256_cvtepu8_epi64(_mm_cvtsi32_si128(four));
      const __m256i idx = _mm256_or_si256(_mm256_srli_epi64(q, 4), _mm256_slli_epi64(_mm256_and_si256(q, low4), 32));
      const __m256 v = _mm256_blendv_ps(_mm256_permutevar8x32_ps(lut0, idx), _mm256_permutevar8x32_ps(lut1, idx),
                                        _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
      if (kind == Q4_OUT_BF16) {
        const __m256i h = _mm256_srli_epi32(_mm256_castps_si256(v), 16);
        const __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(h, h), 0x08);
        _mm_storeu_si128((__m128i*)(oh + (i - i0)), _mm256_castsi256_si128(p));
      } else {
        _mm256_storeu_ps(of + (i - i0), v);
      }
    }
    for (; i < seg; i++) q4_put(w.codes, i, i0, lutv, kind, out);
  }
}
