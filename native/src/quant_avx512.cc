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

// Word indices of 32 elements from 16 code bytes: dword j = byte j, its low word (element
// 2j) the high nibble and its high word (element 2j+1) the low nibble.
inline __m512i nibble_words(const uint8_t* codes) {
  const __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)codes));
  return _mm512_or_si512(_mm512_srli_epi32(q, 4), _mm512_and_si512(_mm512_slli_epi32(q, 16), _mm512_set1_epi32(0x000f0000)));
}

// Qword indices of 16 elements from 8 code bytes: qword j = byte j, its low dword (element
// 2j) the high nibble and its high dword (element 2j+1) the low nibble.
inline __m512i nibble_dwords(const uint8_t* codes) {
  const __m512i q = _mm512_cvtepu8_epi64(_mm_loadl_epi64((const __m128i*)codes));
  return _mm512_or_si512(_mm512_srli_epi64(q, 4), _mm512_slli_epi64(_mm512_and_si512(q, _mm512_set1_epi64(15)), 32));
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
      const __m512 v = _mm512_permutexvar_ps(nibble_dwords(w.codes + (i >> 1)), lut);
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

// The scale of the block at flat index f (f == s.next), moving the walk to the next block.
inline float row_scale(const q4_weight& w, RowState& s) {
  const float scale = q4_walk_scale(w, s.walk, s.last);
  s.walk.b++;
  s.next = s.walk.b * w.blocksize;
  return scale;
}

// Rows whose blocks start with the row (K % blocksize == 0, blocksize % 32 == 0) of at
// most Q4_ROW_BLOCKS blocks take the block-major tiles below: each row's scales are decoded
// once up front and every block's table is built once, outside the step loop, which then
// holds no branch (the walk above tested every row at every step and kept its state, the
// tables and the sums on the stack). Same products in the same order: bit for bit the walk.
constexpr int64_t Q4_ROW_BLOCKS = 256;

inline bool rows_block_aligned(const q4_weight& w) {
  return w.blocksize % 32 == 0 && w.K % w.blocksize == 0 && w.K / w.blocksize <= Q4_ROW_BLOCKS;
}

// The block's 16 code values times its scale, rounded to bf16: words 0..15 of a zmm.
inline __m512i bf16_table(__m512 map, float scale) {
  const __m512 v = round_bf16(_mm512_mul_ps(map, _mm512_set1_ps(scale)));
  return _mm512_zextsi256_si512(_mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(v), 16)));
}

// Scales of every block of rows n0.. (nr <= 4, missing rows repeat row n0) -> am, and each
// row's first code byte -> codes.
inline void rows_setup(const q4_weight& w, int64_t n0, int nr, float (*am)[Q4_ROW_BLOCKS], const uint8_t** codes) {
  const int64_t nb = w.K / w.blocksize;
  for (int r = 0; r < 4; r++) {
    const int64_t row = n0 + (r < nr ? r : 0);
    q4_absmax_run(w, row * nb, nb, am[r]);
    codes[r] = w.codes + row * w.K / 2;
  }
}

// Block b's share (2 x blocksize bytes) of the 2K code bytes of the 4 rows after n0:
// rows of a few hundred bytes are too short for the hardware prefetchers to pick up, so
// without it every tile waited on memory for its codes (decode: 2-2.5x slower than warm).
// (Clamped to the codes: the last tile has no next rows.)
inline void prefetch_next_rows(const q4_weight& w, int64_t n0, int64_t b) {
  const int64_t first = (n0 + 4) * w.K / 2 + 2 * w.blocksize * b, ncodes = (int64_t)w.ncodes;
  const int64_t end = first + 2 * w.blocksize < ncodes ? first + 2 * w.blocksize : ncodes;
  for (int64_t o = first; o < end; o += 64) _mm_prefetch((const char*)w.codes + o, _MM_HINT_T0);
}

// The two computes of the block-major tiles: a block's table, the W values of one step
// looked up in it, x loaded, and one multiply-add.
struct RowsBf16 {  // x bf16, W rounded to bf16, vdpbf16ps; 32 elements per step
  using X = uint16_t;
  using Table = __m512i;
  using Vec = __m512bh;
  static constexpr int STEP = 32;
  static Table table(__m512 map, float scale) { return bf16_table(map, scale); }
  static Vec lookup(const uint8_t* codes, Table t) { return (__m512bh)_mm512_permutexvar_epi16(nibble_words(codes), t); }
  static Vec load(const X* x) { return (__m512bh)_mm512_loadu_si512(x); }
  static __m512 madd(__m512 acc, Vec x, Vec w) { return _mm512_dpbf16_ps(acc, x, w); }
};
struct RowsF32 {  // x f32, W f32, FMA; 16 elements per step
  using X = float;
  using Table = __m512;
  using Vec = __m512;
  static constexpr int STEP = 16;
  static Table table(__m512 map, float scale) { return _mm512_mul_ps(map, _mm512_set1_ps(scale)); }
  static Vec lookup(const uint8_t* codes, Table t) { return _mm512_permutexvar_ps(nibble_dwords(codes), t); }
  static Vec load(const X* x) { return _mm512_loadu_ps(x); }
  static __m512 madd(__m512 acc, Vec x, Vec w) { return _mm512_fmadd_ps(x, w, acc); }
};

// x (MB,K), W rows n0.. -> out (MB,4); rows_block_aligned(w). Row r's sums in k order,
// as the walk's.
template <class C, int MB>
inline void rows_q4(const q4_weight& w, int64_t n0, int nr, const typename C::X* x, float* out) {
  const int64_t K = w.K, bs = w.blocksize, nb = K / bs;
  const __m512 map = _mm512_loadu_ps(w.map);
  alignas(64) float am[4][Q4_ROW_BLOCKS];
  const uint8_t* codes[4];
  rows_setup(w, n0, nr, am, codes);
  __m512 acc[MB][4];
  for (int m = 0; m < MB; m++)
    for (int r = 0; r < 4; r++) acc[m][r] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; b++) {
    prefetch_next_rows(w, n0, b);
    typename C::Table lut[4];
    for (int r = 0; r < 4; r++) lut[r] = C::table(map, am[r][b]);
    for (int64_t k = b * bs; k < (b + 1) * bs; k += C::STEP) {
      typename C::Vec wv[4];
      for (int r = 0; r < 4; r++) wv[r] = C::lookup(codes[r] + k / 2, lut[r]);
      for (int m = 0; m < MB; m++) {
        const typename C::Vec xv = C::load(x + m * K + k);
        for (int r = 0; r < 4; r++) acc[m][r] = C::madd(acc[m][r], xv, wv[r]);
      }
    }
  }
  for (int m = 0; m < MB; m++)
    for (int r = 0; r < 4; r++) out[m * 4 + r] = _mm512_reduce_add_ps(acc[m][r]);
}

// rows_q4 at mb rows of x.
template <class C>
void rows_q4_mb(const q4_weight& w, int64_t n0, int nr, const typename C::X* x, int mb, float* out) {
  switch (mb) {
    case 1: rows_q4<C, 1>(w, n0, nr, x, out); break;
    case 2: rows_q4<C, 2>(w, n0, nr, x, out); break;
    case 3: rows_q4<C, 3>(w, n0, nr, x, out); break;
    default: rows_q4<C, 4>(w, n0, nr, x, out); break;
  }
}

// The general walk, for rows whose blocks straddle rows (any blocksize with K % 32 == 0).
// x (MB,K) bf16, W rows n0.. (nr <= 4, missing rows repeat row n0) -> out (MB,4), vdpbf16ps.
inline __attribute__((always_inline)) void tile_q4_bf16(const q4_weight& w, int64_t n0, int nr, const uint16_t* x,
                                                        const int MB, float* out) {
  const int64_t K = w.K;
  const __m512 map = _mm512_loadu_ps(w.map);
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
      if (f == st[r].next) lut[r] = bf16_table(map, row_scale(w, st[r]));
      wv[r] = (__m512bh)_mm512_permutexvar_epi16(nibble_words(w.codes + (f >> 1)), lut[r]);
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
      if (f == st[r].next) lut[r] = _mm512_mul_ps(map, _mm512_set1_ps(row_scale(w, st[r])));
      wv[r] = _mm512_permutexvar_ps(nibble_dwords(w.codes + (f >> 1)), lut[r]);
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
  if (rows_block_aligned(w)) return rows_q4_mb<RowsBf16>(w, n0, nr, xh, mb, out);
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
  if (rows_block_aligned(w)) return rows_q4_mb<RowsF32>(w, n0, nr, xf, mb, out);
  switch (mb) {
    case 1: tile_q4_f32(w, n0, nr, xf, 1, out); break;
    case 2: tile_q4_f32(w, n0, nr, xf, 2, out); break;
    case 3: tile_q4_f32(w, n0, nr, xf, 3, out); break;
    default: tile_q4_f32(w, n0, nr, xf, 4, out); break;
  }
}
