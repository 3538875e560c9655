// AVX-512 4-bit kernels: blockwise quantization 16 values at a time (the nearest code is
// the count of thresholds below the value, one masked add per threshold), and decoding,
// where the 16 code values scaled by the block's absmax sit in one zmm and vpermps looks
// up 16 elements at once. Same results as quant_ref.cc bit for bit (only exact compares
// and the same f32 multiplies; no FMA on these paths).
#include <immintrin.h>
#include <cmath>
#include "quant.h"

// GCC 12's AVX-512 headers pass _mm512_undefined_*() to the unmasked forms and then warn
// about it (GCC bug 105593, fixed in 13): the warning is about the header, not this code.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace {

// v rounded to bf16 (nearest even) and widened back; finite values only (as ft_f32_to_bf16).
inline __m512 round_bf16(__m512 v) {
  const __m512i u = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  const __m512i r = _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb);
  return _mm512_castsi512_ps(_mm512_and_si512(r, _mm512_set1_epi32((int)0xffff0000u)));
}

// Codes (16 dword lanes) of the scaled, clamped values s.
inline __m512i codes16(__m512 s, int32_t type, const q4_thresholds& t) {
  const __m512i one = _mm512_set1_epi32(1);
  __m512i cnt = _mm512_setzero_si512();
  if (type == Q4_NF4) {
    for (int i = 0; i < 15; i++) cnt = _mm512_mask_add_epi32(cnt, _mm512_cmp_ps_mask(s, _mm512_set1_ps(t.nf4[i]), _CMP_GT_OQ), cnt, one);
    return cnt;
  }
  const __mmask16 neg = _mm512_cmp_ps_mask(s, _mm512_setzero_ps(), _CMP_LT_OQ);
  const __m512 a = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(s), _mm512_set1_epi32(0x7fffffff)));
  for (int i = 0; i < 7; i++) cnt = _mm512_mask_add_epi32(cnt, _mm512_cmp_ps_mask(a, _mm512_set1_ps(t.fp4[i]), _CMP_GT_OQ), cnt, one);
  const __m512i order = _mm512_loadu_si512(t.fp4_code_x2);
  const __m512i code = _mm512_permutexvar_epi32(cnt, order);
  return _mm512_mask_or_epi32(code, neg, code, _mm512_set1_epi32(8));
}

}  // namespace

// x (len) -> out (ceil(len/2)) packed codes; returns absmax
float q4_quant_block_avx512(const float* x, int64_t len, int32_t type, uint8_t* out) {
  const q4_thresholds& t = q4_thresholds_get();
  const __m512i absmask = _mm512_set1_epi32(0x7fffffff);
  __m512 vmax = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= len; i += 16) vmax = _mm512_max_ps(vmax, _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(_mm512_loadu_ps(x + i)), absmask)));
  if (i < len) {
    const __m512 v = _mm512_maskz_loadu_ps((__mmask16)((1u << (len - i)) - 1), x + i);
    vmax = _mm512_max_ps(vmax, _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), absmask)));
  }
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, vmax);
  float amax = 0.0f;
  for (int j = 0; j < 16; j++) amax = lanes[j] > amax ? lanes[j] : amax;
  const float r = q4_reciprocal(amax);
  const __m512 vr = _mm512_set1_ps(r), hi = _mm512_set1_ps(1.0f), lo = _mm512_set1_ps(-1.0f);
  for (i = 0; i + 16 <= len; i += 16) {
    const __m512 s = _mm512_min_ps(hi, _mm512_max_ps(lo, _mm512_mul_ps(_mm512_loadu_ps(x + i), vr)));
    const __m512i c = codes16(s, type, t);  // qword j: c[2j] low dword, c[2j+1] high dword
    const __m512i packed = _mm512_or_si512(_mm512_slli_epi64(_mm512_and_si512(c, _mm512_set1_epi64(15)), 4), _mm512_srli_epi64(c, 32));
    _mm_storel_epi64((__m128i*)(out + i / 2), _mm512_cvtepi64_epi8(packed));
  }
  q4_quant_pairs(x, i, len, r, type, out);
  return amax;
}

// Elements [i0, i0+len) of w -> out (f32 values or bf16 patterns), 16 per step.
void q4_decode_avx512(const q4_weight& w, int64_t i0, int64_t len, int32_t kind, void* out) {
  float* of = (float*)out;
  uint16_t* oh = (uint16_t*)out;
  const __m512i low4 = _mm512_set1_epi64(15);
  const __m512 map = _mm512_loadu_ps(w.map);
  int64_t i = i0;
  const int64_t end = i0 + len;
  while (i < end) {
    const int64_t b = i / w.blocksize, seg = (b + 1) * w.blocksize < end ? (b + 1) * w.blocksize : end;
    __m512 lut = _mm512_mul_ps(map, _mm512_set1_ps(q4_block_absmax(w, b)));
    if (kind != Q4_OUT_F32) lut = round_bf16(lut);
    alignas(64) float lutv[16];
    _mm512_store_ps(lutv, lut);
    if ((i & 1) && i < seg) q4_put(w.codes, i++, i0, lutv, kind, out);  // odd start: a low nibble
    for (; i + 16 <= seg; i += 16) {
      // qword j holds byte j: element 2j = its high nibble (low dword), 2j+1 = low nibble.
      const __m512i q = _mm512_cvtepu8_epi64(_mm_loadl_epi64((const __m128i*)(w.codes + (i >> 1))));
      const __m512i idx = _mm512_or_si512(_mm512_srli_epi64(q, 4), _mm512_slli_epi64(_mm512_and_si512(q, low4), 32));
      const __m512 v = _mm512_permutexvar_ps(idx, lut);
      if (kind == Q4_OUT_BF16) _mm256_storeu_si256((__m256i*)(oh + (i - i0)), _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(v), 16)));
      else _mm512_storeu_ps(of + (i - i0), v);
    }
    for (; i < seg; i++) q4_put(w.codes, i, i0, lutv, kind, out);
  }
}
