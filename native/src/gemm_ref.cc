// GEMM dispatchers and scalar references. The dispatchers check every buffer size against
// the dims before touching memory, then run the active ISA's variant: for the linear-layer
// orientation with few rows of x the unpacked GEMV path (gemv_driver.cc), otherwise the
// blocked driver with the AVX-512 or AVX2 micro-kernel, or the scalar reference. bf16 products use
// vdpbf16ps where the CPU has avx512_bf16 and otherwise widen to f32 while packing
// (a product of two bf16 values is exact in f32, so both paths compute the same products).
#include <cmath>
#include <cstdlib>
#include "gemm.h"
#include "grad.h"
#include "quant.h"

namespace {

// Small-M cut-over: up to this many rows of x the linear-layer orientation (transB) runs
// the unpacked GEMV path (gemv_driver.cc). Measured on Zen 5 (bench/RESULTS.md): the GEMV
// path beats the blocked driver, whose B packing is paid for only M rows, by 2-10x up to
// M = 32 and still at M = 64 on every decode shape, f32 and bf16, AVX-512 and AVX2.
constexpr int64_t GEMV_MAX_M = 32;

// The small-M path applies to y (M,N) = x (M,K) W(N,K)^T with x row-major (transA with
// M = 1 is the same layout).
bool use_gemv(int64_t M, bool transA, bool transB) {
  return transB && (!transA || M == 1) && M <= GEMV_MAX_M;
}

// Checks dims and sizes: a (M,K), b (K,N), bias (N) if given, c (M,N).
ft_status check_dims(size_t na, size_t nb, const float* bias, size_t nbias, size_t nc, int64_t M, int64_t N,
                     int64_t K) {
  const int64_t lim = (int64_t)1 << 31;
  if (M < 0 || N < 0 || K < 0 || M >= lim || N >= lim || K >= lim) return FT_ERR_ARG;
  if (!ft_fits(na, (size_t)(M * K)) || !ft_fits(nb, (size_t)(K * N)) || !ft_fits(nc, (size_t)(M * N))) return FT_ERR_SIZE;
  if (bias && !ft_fits(nbias, (size_t)N)) return FT_ERR_SIZE;
  return FT_OK;
}

// c (M,N) [+]= A^T B (A (K,M), B (K,N)) with M or N <= 16, no bias, on AVX-512: the
// skinny kernel (gemm.h), which streams the long operand once instead of packing it for a
// half-empty tile. Returns false when the product is not of that kind.
bool skinny_shape(int64_t M, int64_t N, int64_t K, bool transA, bool transB, const float* bias) {
  return ft_active_isa() == FT_ISA_AVX512 && transA && !transB && !bias && K >= 64 && M > 0 && N > 0 && (M <= 16 || N <= 16);
}

bool skinny(const void* a, bool a_f32, const void* b, bool b_f32, bool round, const float* bias, float* c, int64_t M,
            int64_t N, int64_t K, bool transA, bool transB, bool accumulate, ft_status* st) {
  if (!skinny_shape(M, N, K, transA, transB, bias)) return false;
  if (N <= 16) *st = gemm_skinny_tn_avx512({a, a_f32, b, b_f32, round, K, M, N, c, true, accumulate});
  else *st = gemm_skinny_tn_avx512({b, b_f32, a, a_f32, round, K, N, M, c, false, accumulate});
  return true;
}

// out = (accumulate ? c : 0) [+ bias] + s, in the order the blocked driver uses.
inline float finish(float c, float s, const float* bias, int64_t j, bool accumulate) {
  float base = accumulate ? c : 0.0f;
  if (bias) base += bias[j];
  return bias || accumulate ? base + s : s;
}

// The GEMV tile kernel gemm_f32 (f32) or gemm_bf16 (bf16 operands) runs on this ISA.
const gemv_kernel& gemv_f32_kernel() {
  const ft_isa isa = ft_active_isa();
  return isa == FT_ISA_AVX512 ? gemv_kernel_f32_avx512 : isa == FT_ISA_AVX2 ? gemv_kernel_f32_avx2 : gemv_kernel_f32_ref;
}
const gemv_kernel& gemv_bf16_kernel() {
  const ft_isa isa = ft_active_isa();
  return isa == FT_ISA_AVX512 && ft_cpu_has_avx512bf16() ? gemv_kernel_bf16_avx512
         : isa != FT_ISA_SCALAR                          ? gemv_kernel_bf16_avx2
                                                         : gemv_kernel_bf16_ref;
}

}  // namespace

// a (M,K)|(K,M), b (K,N)|(N,K), bias (N)|null -> c (M,N); f32 sum in K order per element.
void gemm_f32_ref(const float* a, const float* b, const float* bias, float* c, int64_t M, int64_t N, int64_t K,
                  bool transA, bool transB, bool accumulate) {
  for (int64_t i = 0; i < M; i++) {
    for (int64_t j = 0; j < N; j++) {
      float s = 0.0f;
      for (int64_t k = 0; k < K; k++) {
        float x = transA ? a[k * M + i] : a[i * K + k];
        float y = transB ? b[j * K + k] : b[k * N + j];
        s += x * y;
      }
      c[i * N + j] = finish(c[i * N + j], s, bias, j, accumulate);
    }
  }
}

// Same with bf16 a, b (decoded exactly); products and sums in f32.
void gemm_bf16_ref(const uint16_t* a, const uint16_t* b, const float* bias, float* c, int64_t M, int64_t N,
                   int64_t K, bool transA, bool transB, bool accumulate) {
  for (int64_t i = 0; i < M; i++) {
    for (int64_t j = 0; j < N; j++) {
      float s = 0.0f;
      for (int64_t k = 0; k < K; k++) {
        float x = ft_bf16_to_f32(transA ? a[k * M + i] : a[i * K + k]);
        float y = ft_bf16_to_f32(transB ? b[j * K + k] : b[k * N + j]);
        s += x * y;
      }
      c[i * N + j] = finish(c[i * N + j], s, bias, j, accumulate);
    }
  }
}

ft_status gemm_f32(const float* a, size_t na, const float* b, size_t nb, const float* bias, size_t nbias,
                   float* c, size_t nc, int64_t M, int64_t N, int64_t K, bool transA, bool transB, bool accumulate) {
  ft_status s = check_dims(na, nb, bias, nbias, nc, M, N, K);
  if (s != FT_OK) return s;
  if (use_gemv(M, transA, transB)) return gemv_rows(gemv_f32_kernel(), a, b, bias, c, M, N, K, accumulate);
  if (skinny(a, true, b, true, false, bias, c, M, N, K, transA, transB, accumulate, &s)) return s;
  switch (ft_active_isa()) {
    case FT_ISA_AVX512:
      return gemm_blocked(gemm_kernel_f32_avx512, GEMM_SRC_F32, a, GEMM_SRC_F32, b, bias, c, M, N, K, transA, transB, accumulate);
    case FT_ISA_AVX2:
      return gemm_blocked(gemm_kernel_f32_avx2, GEMM_SRC_F32, a, GEMM_SRC_F32, b, bias, c, M, N, K, transA, transB, accumulate);
    default:
      gemm_f32_ref(a, b, bias, c, M, N, K, transA, transB, accumulate);
      return FT_OK;
  }
}

ft_status gemm_bf16(const uint16_t* a, size_t na, const uint16_t* b, size_t nb, const float* bias, size_t nbias,
                    float* c, size_t nc, int64_t M, int64_t N, int64_t K, bool transA, bool transB, bool accumulate) {
  ft_status s = check_dims(na, nb, bias, nbias, nc, M, N, K);
  if (s != FT_OK) return s;
  // AVX-512 without avx512_bf16 widens like AVX2
  if (use_gemv(M, transA, transB)) return gemv_rows(gemv_bf16_kernel(), a, b, bias, c, M, N, K, accumulate);
  if (skinny(a, false, b, false, true, bias, c, M, N, K, transA, transB, accumulate, &s)) return s;
  switch (ft_active_isa()) {
    case FT_ISA_AVX512: {
      const gemm_kernel& k = ft_cpu_has_avx512bf16() ? gemm_kernel_bf16_avx512 : gemm_kernel_f32_avx512;
      return gemm_blocked(k, GEMM_SRC_BF16, a, GEMM_SRC_BF16, b, bias, c, M, N, K, transA, transB, accumulate);
    }
    case FT_ISA_AVX2:
      return gemm_blocked(gemm_kernel_f32_avx2, GEMM_SRC_BF16, a, GEMM_SRC_BF16, b, bias, c, M, N, K, transA, transB, accumulate);
    default:
      gemm_bf16_ref(a, b, bias, c, M, N, K, transA, transB, accumulate);
      return FT_OK;
  }
}

namespace {

// An f32 operand of n values rounded to a fresh bf16 buffer (cast_f32_bf16, same bits on
// every ISA); null when out of memory. The caller frees it.
uint16_t* rounded_copy(const void* x, int64_t n) {
  uint16_t* y = (uint16_t*)std::malloc((size_t)(n > 0 ? n : 1) * 2);
  if (y) cast_f32_bf16((const float*)x, (size_t)n, y, (size_t)n, n);
  return y;
}

}  // namespace

ft_status gemm_bf16_mixed(const void* a, bool a_f32, size_t na, const void* b, bool b_f32, size_t nb, const float* bias,
                          size_t nbias, float* c, size_t nc, int64_t M, int64_t N, int64_t K, bool transA, bool transB,
                          bool accumulate) {
  ft_status s = check_dims(na, nb, bias, nbias, nc, M, N, K);
  if (s != FT_OK) return s;
  const ft_isa isa = ft_active_isa();
  if (!a_f32 && !b_f32) {
    return gemm_bf16((const uint16_t*)a, na, (const uint16_t*)b, nb, bias, nbias, c, nc, M, N, K, transA, transB,
                     accumulate);
  }
  if (isa == FT_ISA_SCALAR || use_gemv(M, transA, transB)) {
    // No packing step to round in: round the f32 operands up front (for the small-M path
    // that is a few rows of x), then the bf16 product.
    uint16_t* ab = a_f32 ? rounded_copy(a, M * K) : nullptr;
    uint16_t* bb = b_f32 ? rounded_copy(b, K * N) : nullptr;
    if ((a_f32 && !ab) || (b_f32 && !bb)) s = FT_ERR_ALLOC;
    else s = gemm_bf16(a_f32 ? ab : (const uint16_t*)a, (size_t)(M * K), b_f32 ? bb : (const uint16_t*)b,
                       (size_t)(K * N), bias, nbias, c, nc, M, N, K, transA, transB, accumulate);
    std::free(ab);
    std::free(bb);
    return s;
  }
  if (skinny(a, a_f32, b, b_f32, true, bias, c, M, N, K, transA, transB, accumulate, &s)) return s;
  const gemm_src as = a_f32 ? GEMM_SRC_F32_BF16 : GEMM_SRC_BF16, bs = b_f32 ? GEMM_SRC_F32_BF16 : GEMM_SRC_BF16;
  const gemm_kernel& k = isa == FT_ISA_AVX2                ? gemm_kernel_f32_avx2
                         : ft_cpu_has_avx512bf16()         ? gemm_kernel_bf16_avx512
                                                           : gemm_kernel_f32_avx512;
  return gemm_blocked(k, as, a, bs, b, bias, c, M, N, K, transA, transB, accumulate);
}

ft_status gemm_multi(const void* a, bool a_f32, size_t na, int64_t M, int64_t K, bool transA,
                     const gemm_multi_out* outs, int n, bool bf16) {
  if (n < 1 || n > GEMM_MULTI_MAX) return FT_ERR_ARG;
  bool separate = ft_active_isa() == FT_ISA_SCALAR;
  for (int s = 0; s < n; s++) {
    const gemm_multi_out& o = outs[s];
    if (!bf16 && (!a_f32 || o.q4 || !o.b_f32)) return FT_ERR_ARG;  // an f32 product takes f32 operands only
    if (o.q4) {  // W^T (N_w rows of K_w) forward, W backward; written, not accumulated; A not transposed
      ft_status st = q4_check(*o.q4);
      if (st != FT_OK) return st;
      if (o.accumulate || transA || o.N != (o.q4_backward ? o.q4->K : o.q4->N) || K != (o.q4_backward ? o.q4->N : o.q4->K)) return FT_ERR_ARG;
      st = check_dims(na, (size_t)(K * o.N), nullptr, 0, o.nc, M, o.N, K);
      if (st != FT_OK) return st;
      separate = separate || M <= GEMV_MAX_M;
      continue;
    }
    const ft_status st = check_dims(na, o.nb, nullptr, 0, o.nc, M, o.N, K);
    if (st != FT_OK) return st;
    separate = separate || use_gemv(M, transA, o.transB) || skinny_shape(M, o.N, K, transA, o.transB, nullptr);
  }
  if (separate) {  // no shared packing step (or not the blocked one): the products one by one
    uint16_t* ab = nullptr;  // a rounded to bf16 once, for the 4-bit products (their x is bf16)
    ft_status st = FT_OK;
    for (int s = 0; s < n && st == FT_OK; s++) {
      const gemm_multi_out& o = outs[s];
      if (!bf16) {
        st = gemm_f32((const float*)a, na, (const float*)o.b, o.nb, nullptr, 0, o.c, o.nc, M, o.N, K, transA, o.transB,
                      o.accumulate);
        continue;
      }
      if (!o.q4) {
        st = gemm_bf16_mixed(a, a_f32, na, o.b, o.b_f32, o.nb, nullptr, 0, o.c, o.nc, M, o.N, K, transA, o.transB,
                             o.accumulate);
        continue;
      }
      const uint16_t* x = (const uint16_t*)a;
      if (a_f32) {
        if (!ab) ab = rounded_copy(a, M * K);
        if (!ab) st = FT_ERR_ALLOC;
        x = ab;
      }
      if (st == FT_OK) st = o.q4_backward ? q4_linear_bwd(*o.q4, x, (size_t)(M * K), true, o.c, o.nc, M)
                                          : q4_linear(*o.q4, x, (size_t)(M * K), true, nullptr, 0, o.c, o.nc, M);
    }
    std::free(ab);
    return st;
  }
  // The kernel gemm_f32, or gemm_bf16_mixed (gemm_bf16 with both operands bf16; q4_linear
  // with bf16 compute), picks on this ISA, and the 4-bit decode kind that kernel takes.
  const ft_isa isa = ft_active_isa();
  const gemm_kernel& k = isa == FT_ISA_AVX2 ? gemm_kernel_f32_avx2
                         : !bf16 || !ft_cpu_has_avx512bf16() ? gemm_kernel_f32_avx512 : gemm_kernel_bf16_avx512;
  const int32_t kind = k.kpair == 2 ? Q4_OUT_BF16 : Q4_OUT_F32_BF16;
  gemm_blocked_out bo[GEMM_MULTI_MAX];
  for (int s = 0; s < n; s++) {
    const gemm_multi_out& o = outs[s];
    const gemm_src bs = o.q4 ? GEMM_SRC_Q4 : !bf16 ? GEMM_SRC_F32 : o.b_f32 ? GEMM_SRC_F32_BF16 : GEMM_SRC_BF16;
    bo[s] = gemm_blocked_out{bs, o.b, o.transB, o.c, o.N, o.accumulate, o.q4, o.q4 ? q4_active_decode() : nullptr, kind,
                             o.q4_backward};
  }
  const gemm_src as = !bf16 ? GEMM_SRC_F32 : a_f32 ? GEMM_SRC_F32_BF16 : GEMM_SRC_BF16;
  return gemm_blocked_multi(k, as, a, transA, M, K, bo, n);
}

ft_status gemm_low_rank(const void* x, bool x_f32, size_t nx, const void* a, bool a_f32, size_t na, const void* b,
                        bool b_f32, size_t nb, float* h, size_t nh, float* y, size_t ny, int64_t M, int64_t K,
                        int64_t R, int64_t N, double s, bool bf16, const void* w, bool w_f32, size_t nw) {
  // Decoding next to a base product big enough to have run on every thread: h = x A^T
  // takes gemm_f32's small-M path (same tiles and bits) split over the threads from a
  // lower size (GEMV_LORA_PARALLEL_MIN_WORK), and the base product's row groups add h B^T
  // (gemv_lowrank) instead of a third product; x is not shared through gemm_multi.
  const bool decode = w && M <= GEMV_MAX_M && M * N * K >= GEMV_PARALLEL_MIN_WORK && !bf16 && x_f32 && a_f32 && b_f32;
  // c [+]= op(p) op(q)^T as Backend.matmulInto / matmulBf16Into would run it (sizes are
  // checked below, before any product)
  auto product = [bf16, decode](const void* p, bool p_f32, size_t np, const void* q, bool q_f32, size_t nq, float* c,
                                size_t nc, int64_t m, int64_t n, int64_t k, bool accumulate) {
    if (!bf16 && p_f32 && q_f32 && decode)
      return gemv_rows(gemv_f32_kernel(), p, q, nullptr, c, m, n, k, accumulate, GEMV_LORA_PARALLEL_MIN_WORK);
    if (!bf16 && p_f32 && q_f32)
      return gemm_f32((const float*)p, np, (const float*)q, nq, nullptr, 0, c, nc, m, n, k, false, true, accumulate);
    return gemm_bf16_mixed(p, p_f32, np, q, q_f32, nq, nullptr, 0, c, nc, m, n, k, false, true, accumulate);
  };
  // every size first, so a bad call writes nothing
  if (M < 0 || K < 0 || R < 0 || N < 0 || !std::isfinite(s)) return FT_ERR_ARG;
  if (!ft_fits(nx, (size_t)(M * K)) || !ft_fits(na, (size_t)(R * K)) || !ft_fits(nb, (size_t)(N * R)) ||
      (h && !ft_fits(nh, (size_t)(M * R))) || !ft_fits(ny, (size_t)(M * N)) || (w && !ft_fits(nw, (size_t)(N * K))))
    return FT_ERR_SIZE;
  if (!h) {  // no caller needs h: a scratch, on the stack when small (decoding)
    float local[1024];
    const size_t n = (size_t)(M * R);
    float* scratch = n <= 1024 ? local : (float*)std::malloc((n > 0 ? n : 1) * sizeof(float));
    if (!scratch) return FT_ERR_ALLOC;
    const ft_status st = gemm_low_rank(x, x_f32, nx, a, a_f32, na, b, b_f32, nb, scratch, n, y, ny, M, K, R, N, s, bf16, w,
                                       w_f32, nw);
    if (scratch != local) std::free(scratch);
    return st;
  }
  ft_status st = FT_OK;
  if (decode) {
    // h = s x A^T first; then the base product as gemm_f32 / gemm_bf16_mixed run it at
    // small M (x rounded to bf16 for a bf16 W), its row groups adding h B^T to their rows.
    st = product(x, x_f32, nx, a, a_f32, na, h, nh, M, R, K, false);
    if (st == FT_OK) st = grad_scale_f32(h, nh, M * R, s);
    if (st != FT_OK) return st;
    const gemv_lowrank lr{&gemv_f32_kernel(), h, (const float*)b, R};
    if (w_f32) return gemv_rows(gemv_f32_kernel(), x, w, nullptr, y, M, N, K, false, GEMV_PARALLEL_MIN_WORK, &lr);
    uint16_t* xb = rounded_copy(x, M * K);
    if (!xb) return FT_ERR_ALLOC;
    st = gemv_rows(gemv_bf16_kernel(), xb, w, nullptr, y, M, N, K, false, GEMV_PARALLEL_MIN_WORK, &lr);
    std::free(xb);
    return st;
  }
  if (w && (bf16 || (x_f32 && w_f32 && a_f32))) {
    const gemm_multi_out outs[2] = {{w, w_f32, nw, y, ny, N, true, false}, {a, a_f32, na, h, nh, R, true, false}};
    st = gemm_multi(x, x_f32, nx, M, K, false, outs, 2, bf16);
  } else {
    if (w) st = product(x, x_f32, nx, w, w_f32, nw, y, ny, M, N, K, false);
    if (st == FT_OK) st = product(x, x_f32, nx, a, a_f32, na, h, nh, M, R, K, false);
  }
  if (st == FT_OK) st = grad_scale_f32(h, nh, M * R, s);
  if (st == FT_OK) st = product(h, true, nh, b, b_f32, nb, y, ny, M, N, R, true);
  return st;
}
