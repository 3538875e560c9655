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
  if (len <= 0) return;
  int64_t i = i0;
  const int64_t end = i0 + len, last = (end - 1) / w.blocksize;
  q4_block_walk walk{i0 / w.blocksize, 0, 0, {}};
  for (; i < end; walk.b++) {
    const int64_t seg = (walk.b + 1) * w.blocksize < end ? (walk.b + 1) * w.blocksize : end;
    __m512 lut = _mm512_mul_ps(map, _mm512_set1_ps(q4_walk_scale(w, walk, last)));
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

// ---- fused GEMV tiles for the small-M path (gemv_rows_q4): up to 4 rows of x against 4
// rows of W, decoding W in registers 32 elements per step (no buffer). Needs K % 32 == 0,
// so every step lies inside one block (blocksize >= 32) and starts on a byte.
namespace {

// Per W row: flat index of its first element, the next block boundary, the block walk and
// the block's 16 scaled code values.
struct RowState {
  int64_t flat, next, last;
  q4_block_walk walk;
};

inline void row_init(const q4_weight& w, RowState& s, int64_t row) {
  s.flat = row * w.K;
  s.last = (s.flat + w.K - 1) / w.blocksize;
  s.walk = q4_block_walk{s.flat / w.blocksize, 0, 0, {}};
  s.next = s.flat;  // the first step builds the table
}

// The table for the block at flat index f (f == s.next): scale * map, as f32 lanes.
inline __m512 row_lut(const q4_weight& w, RowState& s, __m512 map) {
  const __m512 lut = _mm512_mul_ps(map, _mm512_set1_ps(q4_walk_scale(w, s.walk, s.last)));
  s.walk.b++;
  s.next = s.walk.b * w.blocksize;
  return lut;
}

// x (MB,K) bf16, W rows n0.. (nr <= 4, missing rows repeat row n0) -> out (MB,4), vdpbf16ps.
inline __attribute__((always_inline)) void tile_q4_bf16(const q4_weight& w, int64_t n0, int nr, const uint16_t* x,
                                                        const int MB, float* out) {
  const int64_t K = w.K;
  const __m512 map = _mm512_loadu_ps(w.map);
  const __m512i low4 = _mm512_set1_epi32(0x000f0000);
  RowState st[4];
  __m512i lut[4];
  __m512 acc[4][4];
  for (int r = 0; r < 4; r++) {
    row_init(w, st[r], n0 + (r < nr ? r : 0));
    lut[r] = _mm512_setzero_si512();
    for (int m = 0; m < MB; m++) acc[m][r] = _mm512_setzero_ps();
  }
  for (int64_t k = 0; k < K; k += 32) {
    __m512bh wv[4];
    for (int r = 0; r < 4; r++) {
      const int64_t f = st[r].flat + k;
      if (f == st[r].next) lut[r] = _mm512_zextsi256_si512(_mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(round_bf16(row_lut(w, st[r], map))), 16)));
      // dword j = byte j: word 2j (element 2j) = high nibble, word 2j+1 = low nibble.
      const __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(w.codes + (f >> 1))));
      const __m512i idx = _mm512_or_si512(_mm512_srli_epi32(q, 4), _mm512_and_si512(_mm512_slli_epi32(q, 16), low4));
      wv[r] = (__m512bh)_mm512_permutexvar_epi16(idx, lut[r]);
    }
    for (int m = 0; m < MB; m++) {
      const __m512bh xv = (__m512bh)_mm512_loadu_si512(x + m * K + k);
      for (int r = 0; r < 4; r++) acc[m][r] = _mm512_dpbf16_ps(acc[m][r], xv, wv[r]);
    }
  }
  for (int m = 0; m < MB; m++)
    for (int r = 0; r < 4; r++) out[m * 4 + r] = _mm512_reduce_add_ps(acc[m][r]);
}

// x (MB,K) f32, W rows n0.. -> out (MB,4), 16 elements per half step.
inline __attribute__((always_inline)) void tile_q4_f32(const q4_weight& w, int64_t n0, int nr, const float* x,
                                                       const int MB, float* out) {
  const int64_t K = w.K;
  const __m512 map = _mm512_loadu_ps(w.map);
  const __m512i low4 = _mm512_set1_epi64(15);
  RowState st[4];
  __m512 lut[4];
  __m512 acc[4][4];
  for (int r = 0; r < 4; r++) {
    row_init(w, st[r], n0 + (r < nr ? r : 0));
    lut[r] = _mm512_setzero_ps();
    for (int m = 0; m < MB; m++) acc[m][r] = _mm512_setzero_ps();
  }
  for (int64_t k = 0; k < K; k += 16) {
    __m512 wv[4];
    for (int r = 0; r < 4; r++) {
      const int64_t f = st[r].flat + k;
      if (f == st[r].next) lut[r] = row_lut(w, st[r], map);
      const __m512i q = _mm512_cvtepu8_epi64(_mm_loadl_epi64((const __m128i*)(w.codes + (f >> 1))));
      wv[r] = _mm512_permutexvar_ps(_mm512_or_si512(_mm512_srli_epi64(q, 4), _mm512_slli_epi64(_mm512_and_si512(q, low4), 32)), lut[r]);
    }
    for (int m = 0; m < MB; m++) {
      const __m512 xv = _mm512_loadu_ps(x + m * K + k);
      for (int r = 0; r < 4; r++) acc[m][r] = _mm512_fmadd_ps(xv, wv[r], acc[m][r]);
    }
  }
  for (int m = 0; m < MB; m++)
    for (int r = 0; r < 4; r++) out[m * 4 + r] = _mm512_reduce_add_ps(acc[m][r]);
}

}  // namespace

// x (mb,K) bf16, W rows [n0, n0+nr) -> out (mb,4); K % 32 == 0
void q4_gemv_bf16_avx512(const q4_weight& w, int64_t n0, int nr, const void* x, int mb, float* out) {
  const uint16_t* xh = (const uint16_t*)x;
  switch (mb) {
    case 1: tile_q4_bf16(w, n0, nr, xh, 1, out); break;
    case 2: tile_q4_bf16(w, n0, nr, xh, 2, out); break;
    case 3: tile_q4_bf16(w, n0, nr, xh, 3, out); break;
    default: tile_q4_bf16(w, n0, nr, xh, 4, out); break;
  }
}

// x (mb,K) f32, W rows [n0, n0+nr) -> out (mb,4); K % 32 == 0
void q4_gemv_f32_avx512(const q4_weight& w, int64_t n0, int nr, const void* x, int mb, float* out) {
  const float* xf = (const float*)x;
  switch (mb) {
    case 1: tile_q4_f32(w, n0, nr, xf, 1, out); break;
    case 2: tile_q4_f32(w, n0, nr, xf, 2, out); break;
    case 3: tile_q4_f32(w, n0, nr, xf, 3, out); break;
    default: tile_q4_f32(w, n0, nr, xf, 4, out); break;
  }
}
