// Quant dispatchers: check every size against the dims before touching memory, then run
// the active ISA's variant. Quantization runs whole blocks per thread (static schedule);
// the 4-bit products go through the GEMV path (few rows, rows of W decoded on the fly)
// or the blocked GEMM driver with a 4-bit B packer (gemm_driver.cc), so the dequantized
// W never exists whole.
#include <omp.h>
#include <cstdlib>
#include <cstring>
#include "gemm.h"
#include "quant.h"

namespace {

// Up to this many rows of x the forward product runs the GEMV path: each group of 4 W
// rows is decoded once and dotted with every row of x (bench/RESULTS.md, 4-bit section).
constexpr int64_t Q4_GEMV_MAX_M = 16;

constexpr int64_t LIM = (int64_t)1 << 40;

size_t blocks_of(int64_t n, int64_t bs) { return (size_t)((n + bs - 1) / bs); }

typedef float (*quant_block_fn)(const float*, int64_t, int32_t, uint8_t*);

quant_block_fn active_quant_block() {
  switch (ft_active_isa()) {
    case FT_ISA_AVX512: return q4_quant_block_avx512;
    case FT_ISA_AVX2: return q4_quant_block_avx2;
    default: return q4_quant_block_ref;
  }
}

ft_status check_quantize(size_t nw, size_t ncodes, size_t nabsmax, int64_t n, int64_t bs, int32_t type) {
  if (n < 0 || n >= LIM || !q4_valid_blocksize(bs) || (type != Q4_NF4 && type != Q4_FP4)) return FT_ERR_ARG;
  if (!ft_fits(nw, (size_t)n) || !ft_fits(ncodes, (size_t)((n + 1) / 2)) || !ft_fits(nabsmax, blocks_of(n, bs))) return FT_ERR_SIZE;
  return FT_OK;
}

// Checks every array of w against its dims.
ft_status check_weight(const q4_weight& w) {
  // N * K is formed only once both are below 2^40 and K <= LIM / N, so it cannot overflow.
  if (w.N < 0 || w.K < 0 || w.N >= LIM || w.K >= LIM || (w.N > 0 && w.K >= LIM / w.N) || !q4_valid_blocksize(w.blocksize)) return FT_ERR_ARG;
  const int64_t n = w.N * w.K;
  const size_t blocks = blocks_of(n, w.blocksize);
  if (!w.codes || !ft_fits(w.ncodes, (size_t)((n + 1) / 2)) || !w.map || !ft_fits(w.nmap, 16)) return FT_ERR_SIZE;
  if (w.absmax) return ft_fits(w.nabsmax, blocks) ? FT_OK : FT_ERR_SIZE;
  if (w.nblocksize <= 0 || w.nblocksize >= LIM) return FT_ERR_ARG;
  if (!w.qabsmax || !w.nest_absmax || !w.nest_map || !ft_fits(w.nqabsmax, blocks) ||
      !ft_fits(w.nnest_absmax, blocks_of((int64_t)blocks, w.nblocksize)) || !ft_fits(w.nnest_map, 256)) {
    return FT_ERR_SIZE;
  }
  return FT_OK;
}

}  // namespace

ft_status q4_check(const q4_weight& w) { return check_weight(w); }

q4_decode_fn q4_active_decode() {
  switch (ft_active_isa()) {
    case FT_ISA_AVX512: return q4_decode_avx512;
    case FT_ISA_AVX2: return q4_decode_avx2;
    default: return q4_decode_ref;
  }
}

namespace {

// Quantizes n elements of w (f32, or bf16 patterns decoded exactly into a block buffer).
ft_status quantize_blocks(const void* w, bool bf16, size_t nw, uint8_t* codes, size_t ncodes, float* absmax,
                          size_t nabsmax, int64_t n, int64_t bs, int32_t type) {
  ft_status s = check_quantize(nw, ncodes, nabsmax, n, bs, type);
  if (s != FT_OK) return s;
  const quant_block_fn f = active_quant_block();
  const int64_t blocks = (int64_t)blocks_of(n, bs);
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; b++) {
    float buf[4096];  // one block (blocksize <= 4096)
    const int64_t i0 = b * bs, len = n - i0 < bs ? n - i0 : bs;
    const float* x = (const float*)w + i0;
    if (bf16) {
      for (int64_t i = 0; i < len; i++) buf[i] = ft_bf16_to_f32(((const uint16_t*)w)[i0 + i]);
      x = buf;
    }
    absmax[b] = f(x, len, type, codes + i0 / 2);
  }
  return FT_OK;
}

}  // namespace

ft_status q4_quantize_f32(const float* w, size_t nw, uint8_t* codes, size_t ncodes, float* absmax, size_t nabsmax,
                          int64_t n, int64_t bs, int32_t type) {
  return quantize_blocks(w, false, nw, codes, ncodes, absmax, nabsmax, n, bs, type);
}

ft_status q4_quantize_bf16(const uint16_t* w, size_t nw, uint8_t* codes, size_t ncodes, float* absmax, size_t nabsmax,
                           int64_t n, int64_t bs, int32_t type) {
  return quantize_blocks(w, true, nw, codes, ncodes, absmax, nabsmax, n, bs, type);
}

// Scalar on every ISA: it runs over nBlocks = n/64 values, a few % of the 4-bit pass.
ft_status q8_quantize_f32(const float* x, size_t nx, const float* map, size_t nmap, uint8_t* codes, size_t ncodes,
                          float* absmax, size_t nabsmax, int64_t n, int64_t bs) {
  if (n < 0 || n >= LIM || bs <= 0 || bs >= LIM) return FT_ERR_ARG;
  if (!ft_fits(nx, (size_t)n) || !ft_fits(nmap, 256) || !ft_fits(ncodes, (size_t)n) || !ft_fits(nabsmax, blocks_of(n, bs))) return FT_ERR_SIZE;
  float mid[255];
  for (int i = 0; i < 255; i++) mid[i] = (map[i] + map[i + 1]) * 0.5f;
  const int64_t blocks = (int64_t)blocks_of(n, bs);
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; b++) {
    const int64_t i0 = b * bs, e = n - i0 < bs ? n : i0 + bs;
    float amax = 0.0f;
    for (int64_t i = i0; i < e; i++) amax = x[i] < 0 ? (-x[i] > amax ? -x[i] : amax) : (x[i] > amax ? x[i] : amax);
    absmax[b] = amax;
    const float r = q4_reciprocal(amax);
    for (int64_t i = i0; i < e; i++) {
      float v = x[i] * r;
      v = v > 1.0f ? 1.0f : v < -1.0f ? -1.0f : v;
      int lo = 0, hi = 255;  // number of midpoints below v, in [lo, hi]
      while (lo < hi) {
        const int m = (lo + hi) >> 1;
        if (v > mid[m]) lo = m + 1;
        else hi = m;
      }
      codes[i] = (uint8_t)lo;
    }
  }
  return FT_OK;
}

ft_status q4_dequantize(const q4_weight& w, float* out, size_t nout) {
  ft_status s = check_weight(w);
  if (s != FT_OK) return s;
  const int64_t n = w.N * w.K;
  if (!ft_fits(nout, (size_t)n)) return FT_ERR_SIZE;
  const q4_decode_fn dec = q4_active_decode();
  const int64_t chunk = 1 << 14, chunks = (n + chunk - 1) / chunk;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; c++) {
    const int64_t i0 = c * chunk;
    dec(w, i0, n - i0 < chunk ? n - i0 : chunk, Q4_OUT_F32, out + i0);
  }
  return FT_OK;
}

ft_status q4_linear(const q4_weight& w, const void* x, size_t nx, bool bf16, const float* bias, size_t nbias, float* y,
                    size_t ny, int64_t M) {
  ft_status s = check_weight(w);
  if (s != FT_OK) return s;
  if (M < 0 || M >= LIM || (M > 0 && (w.K >= LIM / M || w.N >= LIM / M))) return FT_ERR_ARG;
  if (!ft_fits(nx, (size_t)(M * w.K)) || !ft_fits(ny, (size_t)(M * w.N)) || (bias && !ft_fits(nbias, (size_t)w.N))) return FT_ERR_SIZE;
  const ft_isa isa = ft_active_isa();
  const bool dp = isa == FT_ISA_AVX512 && ft_cpu_has_avx512bf16();
  if (isa == FT_ISA_SCALAR || M <= Q4_GEMV_MAX_M) {
    const gemv_kernel& g = !bf16 ? (isa == FT_ISA_AVX512 ? gemv_kernel_f32_avx512 : isa == FT_ISA_AVX2 ? gemv_kernel_f32_avx2 : gemv_kernel_f32_ref)
                                 : (dp ? gemv_kernel_bf16_avx512 : isa != FT_ISA_SCALAR ? gemv_kernel_bf16_avx2 : gemv_kernel_bf16_ref);
    const q4_gemv_fn fused = isa != FT_ISA_AVX512 ? nullptr : !bf16 ? q4_gemv_f32_avx512 : dp ? q4_gemv_bf16_avx512 : nullptr;
    return gemv_rows_q4(g, fused, x, w, q4_active_decode(), bf16 ? Q4_OUT_BF16 : Q4_OUT_F32, bias, y, M);
  }
  const gemm_kernel& k = isa == FT_ISA_AVX2 ? gemm_kernel_f32_avx2 : bf16 && dp ? gemm_kernel_bf16_avx512 : gemm_kernel_f32_avx512;
  const int32_t kind = !bf16 ? Q4_OUT_F32 : k.kpair == 2 ? Q4_OUT_BF16 : Q4_OUT_F32_BF16;
  return gemm_blocked_q4(k, bf16 ? GEMM_SRC_BF16 : GEMM_SRC_F32, x, w, q4_active_decode(), kind, false, bias, y, M);
}

ft_status q4_linear_bwd(const q4_weight& w, const void* dy, size_t ndy, bool bf16, float* dx, size_t ndx, int64_t M) {
  ft_status s = check_weight(w);
  if (s != FT_OK) return s;
  if (M < 0 || M >= LIM || (M > 0 && (w.K >= LIM / M || w.N >= LIM / M))) return FT_ERR_ARG;
  if (!ft_fits(ndy, (size_t)(M * w.N)) || !ft_fits(ndx, (size_t)(M * w.K))) return FT_ERR_SIZE;
  const ft_isa isa = ft_active_isa();
  if (isa == FT_ISA_SCALAR) return q4_linear_bwd_ref(w, dy, bf16, dx, M);
  const bool dp = isa == FT_ISA_AVX512 && ft_cpu_has_avx512bf16();
  const gemm_kernel& k = isa == FT_ISA_AVX2 ? gemm_kernel_f32_avx2 : bf16 && dp ? gemm_kernel_bf16_avx512 : gemm_kernel_f32_avx512;
  const int32_t kind = !bf16 ? Q4_OUT_F32 : k.kpair == 2 ? Q4_OUT_BF16 : Q4_OUT_F32_BF16;
  return gemm_blocked_q4(k, bf16 ? GEMM_SRC_BF16 : GEMM_SRC_F32, dy, w, q4_active_decode(), kind, true, nullptr, dx, M);
}
