// AVX-512 GEMM micro-kernels for the blocked driver (gemm_driver.cc).
//
// f32: a 14 x 32 register tile, 28 zmm accumulators + 2 B vectors; each A value is an
// embedded-broadcast operand of the FMA, so a k step is 2 vector loads + 28 FMAs. Two FMA
// pipes with 4-cycle latency need >= 8 independent accumulators; 28 hide it with room.
// bf16: the same tile with vdpbf16ps, which multiplies adjacent bf16 pairs along K and adds
// both products into one f32 lane, so the packers store K in pairs (see gemm.h).
// GCC 12 warns about _mm512_undefined_* inside its own permute/convert intrinsics (GCC bug
// 105593, fixed in 13); the warning is about the header, not this code.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#include "gemm.h"
#include "simd_avx512.h"

namespace {

constexpr int MR = 14, NR = 32;

// Fetches the c (14,32) tile into L1 while the k loop runs: without it the final
// load-add-store of C stalled for ~19% of the kernel's time (perf annotate, 2048^3 NN).
// NV 16-column vectors per row: the half-width tile's 16 floats end at column 15.
#define PREFETCH_C_TILE(c, ldc, NV)                                           \
  for (int i = 0; i < MR; i++) {                                              \
    _mm_prefetch((const char*)((c) + i * (ldc)), _MM_HINT_T0);                \
    _mm_prefetch((const char*)((c) + i * (ldc) + ((NV) == 2 ? 16 : 15)), _MM_HINT_T0);  \
  }

// Adds (or stores, when beta0) the accumulator tile's NV 16-column vectors per row into c
// (14, 16 NV), row stride ldc. A macro rather than a function so the accumulators stay in
// registers (GCC spilled them to the stack when the array was passed by reference).
#define STORE_C_TILE(acc, c, ldc, beta0, NV)                                                     \
  _Pragma("GCC unroll 14") for (int i = 0; i < MR; i++) {                                        \
    float* row = (c) + i * (ldc);                                                                \
    _Pragma("GCC unroll 2") for (int v = 0; v < (NV); v++) {                                     \
      if (beta0) _mm512_storeu_ps(row + 16 * v, acc[i][v]);                                      \
      else _mm512_storeu_ps(row + 16 * v, _mm512_add_ps(_mm512_loadu_ps(row + 16 * v), acc[i][v])); \
    }                                                                                            \
  }

// ap (kc, lda) f32 (row k's first 14 values used), bp (kc,32) f32 -> c (14, 16 NV): NV = 2
// the whole panel; NV = 1 its first 16 columns only (a rank-16 LoRA factor's panel: half
// the FMAs, the same sums). lda = 14 is a packed A panel; a larger lda reads the tile's
// rows of op(A) = A^T straight from A (K, M), lda = M (gemm_micro_f32_lda_avx512).
template <int NV>
inline void micro_f32(int64_t kc, const float* ap, int64_t lda, const float* bp, float* c, int64_t ldc, bool beta0) {
  __m512 acc[MR][NV];
#pragma GCC unroll 14
  for (int i = 0; i < MR; i++)
    for (int v = 0; v < NV; v++) acc[i][v] = _mm512_setzero_ps();
  PREFETCH_C_TILE(c, ldc, NV)
  for (int64_t k = 0; k < kc; k++) {
    __m512 b[NV];
    for (int v = 0; v < NV; v++) b[v] = _mm512_load_ps(bp + 16 * v);
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
      const __m512 x = _mm512_set1_ps(ap[i]);
      for (int v = 0; v < NV; v++) acc[i][v] = _mm512_fmadd_ps(x, b[v], acc[i][v]);
    }
    ap += lda;
    bp += NR;
  }
  STORE_C_TILE(acc, c, ldc, beta0, NV);
}

template <int NV>
void gemm_micro_f32_avx512(int64_t kc, const void* ap, const void* bp, float* c, int64_t ldc, bool beta0) {
  micro_f32<NV>(kc, (const float*)ap, MR, (const float*)bp, c, ldc, beta0);
}

void gemm_micro_f32_lda_avx512(int64_t kc, const float* ap, int64_t lda, const void* bp, float* c, int64_t ldc,
                               bool beta0) {
  micro_f32<2>(kc, ap, lda, (const float*)bp, c, ldc, beta0);
}

// ap (kc/2,14,2) bf16, bp (kc/2,32,2) bf16 -> c (14, 16 NV); kc even; NV as above
template <int NV>
void gemm_micro_bf16_avx512(int64_t kc, const void* ap_, const void* bp_, float* c, int64_t ldc, bool beta0) {
  const int32_t* ap = (const int32_t*)ap_;  // one bf16 pair per row and k pair
  const __m512i* bp = (const __m512i*)bp_;
  __m512 acc[MR][NV];
#pragma GCC unroll 14
  for (int i = 0; i < MR; i++)
    for (int v = 0; v < NV; v++) acc[i][v] = _mm512_setzero_ps();
  PREFETCH_C_TILE(c, ldc, NV)
  for (int64_t k = 0; k < kc; k += 2) {
    __m512bh b[NV];
    for (int v = 0; v < NV; v++) b[v] = (__m512bh)_mm512_load_si512(bp + v);
#pragma GCC unroll 14
    for (int i = 0; i < MR; i++) {
      const __m512bh x = (__m512bh)_mm512_set1_epi32(ap[i]);
      for (int v = 0; v < NV; v++) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], x, b[v]);
    }
    ap += MR;
    bp += 2;
  }
  STORE_C_TILE(acc, c, ldc, beta0, NV);
}

// Rows ahead that the rows-contiguous bf16 packer prefetches. Its source rows lie a row
// stride apart (3-8 KiB: a new page per row, which the hardware prefetchers do not
// follow), and under autocast every source is a cold f32 activation, gradient or master
// weight: the loads waited on memory (perf: the hot instructions of the packer were the
// ones after its loads, and packing was a fifth of a full bf16 step's GEMM time). A
// 16-float chunk at an unaligned column spans two lines: both are fetched. Medium full
// fine-tuning --bf16, alternating builds: 926-934 -> 966-982 tok/s with the first line 8
// rows ahead, then 962-998 -> 995-1,018 with both lines 16 rows ahead (8: 987-1,027, 32:
// 989-1,016); LoRA-bf16 unchanged or better. The f32 packer's plain copy gained nothing
// from it (medium full f32, alternating), so it has none.
constexpr int64_t PACK_AHEAD = 16;

// Rows contiguous (rs == 1): for each k pair, rows r.. of source rows k and k+1 become 16
// bf16 patterns each (widen(row, mask): the low half of each u32 lane) and interleave
// into 16 (lo, hi) pairs, stored contiguously at pair-row k/2.
template <class T, class Widen>
void pack_pairs_rows_t(const T* p, int64_t ks, int64_t nr, int64_t R, int64_t kc, uint32_t* dst, Widen widen) {
  for (int64_t k = 0; k < kc; k += 2) {
    const T* x0 = p + k * ks;
    const T* x1 = k + 1 < kc ? x0 + ks : nullptr;
    uint32_t* out = dst + (k >> 1) * R;
    for (int64_t r = 0; r < nr; r += 16) {
      if (k + PACK_AHEAD + 1 < kc) {
        const T* a = x0 + PACK_AHEAD * ks + r;
        const int64_t last = (nr - r < 16 ? nr - r : 16) - 1;  // the chunk's last element: its line too
        _mm_prefetch((const char*)a, _MM_HINT_T0);
        _mm_prefetch((const char*)(a + last), _MM_HINT_T0);
        _mm_prefetch((const char*)(a + ks), _MM_HINT_T0);
        _mm_prefetch((const char*)(a + ks + last), _MM_HINT_T0);
      }
      const __mmask16 m = mask16(nr - r);
      const __m512i lo = widen(x0 + r, m);
      const __m512i hi = x1 ? widen(x1 + r, m) : _mm512_setzero_si512();
      _mm512_mask_storeu_epi32(out + r, m, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
    }
  }
}

// f32 values rounded to bf16 as the cast kernels round them.
inline __m512i widen_f32(const float* x, __mmask16 m) { return round_bf16(_mm512_maskz_loadu_ps(m, x)); }
// bf16 patterns as they are.
inline __m512i widen_bf16(const uint16_t* x, __mmask16 m) { return _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, x)); }

// k contiguous (ks == 1): rows go 16 at a time; row r's pairs j = (k 2j, k 2j+1) of a
// 32-k block come from load(r) (16 pairs as u32 lanes), then one 16 x 16 transpose turns
// them into pair-rows, each stored as one masked vector of the group's rows.
template <class Load>
void pack_pairs_cols_t(int64_t nr, int64_t R, int64_t kc, uint32_t* dst, Load load) {
  __m512i rows[16];
  for (int64_t kb = 0; kb < kc; kb += 32) {
    const int64_t n = kc - kb < 32 ? kc - kb : 32, np = (n + 1) >> 1;
    for (int64_t r0 = 0; r0 < nr; r0 += 16) {
      const int64_t g = nr - r0 < 16 ? nr - r0 : 16;
      for (int64_t i = 0; i < 16; i++) rows[i] = i < g ? load(r0 + i, kb, n) : _mm512_setzero_si512();
      transpose16(rows);
      const __mmask16 m = mask16(g);
      uint32_t* out = dst + (kb >> 1) * R + r0;
      for (int64_t j = 0; j < np; j++) _mm512_mask_storeu_epi32(out + j * R, m, rows[j]);
    }
  }
}

// Row r, k block [kb, kb+n) of an f32 source rounded to bf16, as 16 pairs (zero past n).
// The packer reads 16 rows a block at a time; each read prefetches its row two blocks
// ahead (a row per page, more streams than the hardware prefetchers keep): medium full
// --bf16 +2-6% (forward 926-966 -> 878-907 ms), LoRA-bf16 +1-4%, alternating builds. The
// bf16 loader below gained nothing from the same.
struct LoadF32Pairs {
  const float* p;
  int64_t rs;
  __m512i even, odd;
  __m512i operator()(int64_t r, int64_t kb, int64_t n) const {
    const float* x = p + r * rs + kb;
    _mm_prefetch((const char*)(x + 64), _MM_HINT_T0);
    _mm_prefetch((const char*)(x + 80), _MM_HINT_T0);
    const __m512i a = round_bf16(_mm512_maskz_loadu_ps(mask16(n), x));
    const __m512i b = round_bf16(_mm512_maskz_loadu_ps(mask16(n - 16), x + 16));
    const __m512i lo = _mm512_permutex2var_epi32(a, even, b), hi = _mm512_permutex2var_epi32(a, odd, b);
    return _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16));
  }
};

// Row r, k block [kb, kb+n) of a bf16 source: its pairs are already adjacent 16-bit
// values, so 16 u32 lanes; an odd n leaves the last pair's high half zero.
struct LoadBf16Pairs {
  const uint16_t* p;
  int64_t rs;
  __m512i operator()(int64_t r, int64_t kb, int64_t n) const {
    return _mm512_maskz_loadu_epi16(n >= 32 ? ~(__mmask32)0 : (__mmask32)((1u << n) - 1), p + r * rs + kb);
  }
};

void pack_pairs_cols(const float* p, int64_t rs, int64_t nr, int64_t R, int64_t kc, uint32_t* dst) {
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  pack_pairs_cols_t(nr, R, kc, dst, LoadF32Pairs{p, rs, even, _mm512_add_epi32(even, _mm512_set1_epi32(1))});
}

// The gemm_pack_fn of the bf16 kernel: p (R rows, kc) f32 -> dst (kcp/2, R, 2) bf16 pairs.
void gemm_pack_f32_bf16_avx512(const float* p, int64_t rs, int64_t ks, int64_t nr, int64_t R, int64_t kc,
                               uint16_t* dst) {
  if (rs == 1) pack_pairs_rows_t(p, ks, nr, R, kc, (uint32_t*)dst, widen_f32);
  else pack_pairs_cols(p, rs, nr, R, kc, (uint32_t*)dst);
}

// The gemm_pack_f32_fn of the f32 kernel. Rows contiguous (rs == 1): each k's rows are
// one or two (masked) vector copies. k contiguous: 16 rows x 16 k at a time, one
// transpose, then each k's 16 rows stored as one (masked) vector, each row prefetched two
// blocks ahead as LoadF32Pairs does (small full +1.5-3% in 6 of 7 alternating rounds).
void gemm_pack_f32_avx512(const float* p, int64_t rs, int64_t ks, int64_t nr, int64_t R, int64_t kc, float* dst) {
  if (rs == 1) {
    for (int64_t k = 0; k < kc; k++) {
      const float* x = p + k * ks;
      for (int64_t r = 0; r < nr; r += 16) {
        const __mmask16 m = mask16(nr - r);
        _mm512_mask_storeu_ps(dst + k * R + r, m, _mm512_maskz_loadu_ps(m, x + r));
      }
    }
    return;
  }
  __m512i rows[16];
  for (int64_t kb = 0; kb < kc; kb += 16) {
    const int64_t n = kc - kb < 16 ? kc - kb : 16;
    const __mmask16 km = mask16(n);
    for (int64_t r0 = 0; r0 < nr; r0 += 16) {
      const int64_t g = nr - r0 < 16 ? nr - r0 : 16;
      for (int64_t i = 0; i < 16; i++) {
        if (i < g) _mm_prefetch((const char*)(p + (r0 + i) * rs + kb + 32), _MM_HINT_T0);
        rows[i] = i < g ? _mm512_maskz_loadu_epi32(km, p + (r0 + i) * rs + kb) : _mm512_setzero_si512();
      }
      transpose16(rows);
      const __mmask16 m = mask16(g);
      for (int64_t j = 0; j < n; j++) _mm512_mask_storeu_epi32(dst + (kb + j) * R + r0, m, rows[j]);
    }
  }
}

// The gemm_pack_bf16_fn of the bf16 kernel. Rows contiguous (rs == 1): rows k and k+1
// widen to 16 u32 lanes each and interleave as (lo, hi); k contiguous: transposes.
void gemm_pack_bf16_avx512(const uint16_t* p, int64_t rs, int64_t ks, int64_t nr, int64_t R, int64_t kc,
                           uint16_t* dst) {
  uint32_t* d = (uint32_t*)dst;
  if (rs == 1) pack_pairs_rows_t(p, ks, nr, R, kc, d, widen_bf16);
  else pack_pairs_cols_t(nr, R, kc, d, LoadBf16Pairs{p, rs});
}

}  // namespace

// Cache blocks, measured on Zen 5 (48 KiB L1d, 1 MiB L2 per core; bench/RESULTS.md):
// a deep KC pays most, since each K slice reloads and stores the C tile (f32 KC 256 ->
// 768 took 2048^3 from 190 to 210 GFLOP/s on one core). The KC x 32 B micro-panel then
// lives in L2 next to the MC x KC block of A; L2 bandwidth covers both at this tile size.
// MC = 12 tiles (168 rows) rather than 24: with 24 the f32 A block alone (1 MiB) filled L2
// and was re-read from L3 for every B micro-panel; 12 measured +2-3% on the GEMM bench's
// shapes in alternating runs (f32 and bf16) and +3% on a medium f32 fine-tuning step.
const gemm_kernel gemm_kernel_f32_avx512 = {gemm_micro_f32_avx512<2>, MR, NR, 768, 14 * 12, 32 * 64, 1, nullptr, nullptr,
                                             gemm_pack_f32_avx512, gemm_micro_f32_avx512<1>,
                                             gemm_micro_f32_lda_avx512};
const gemm_kernel gemm_kernel_bf16_avx512 = {gemm_micro_bf16_avx512<2>, MR, NR, 1024, 14 * 12, 32 * 64, 2,
                                              gemm_pack_f32_bf16_avx512, gemm_pack_bf16_avx512, nullptr,
                                              gemm_micro_bf16_avx512<1>};
