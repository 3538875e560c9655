// GEMM family: dense products C (M,N) [+]= op(A) op(B) [+ bias] and dtype casts.
//
// Layout: row-major, leading dimensions are the natural widths, so
//   op(A) (M,K): A is (M,K), or (K,M) when transA;  op(B) (K,N): B is (K,N), or (N,K) when transB.
// `accumulate` adds into C instead of overwriting it; `bias` (N, may be null) is added to
// every row. Accumulation is f32 in a fixed K order; threads split M or N only, so a
// result is bit-identical for a fixed ISA whatever the thread count.
//
// The fast paths share one blocked driver (gemm_driver.cc, after BLIS/GotoBLAS: pack a
// KC x NC panel of B, pack MC x KC blocks of A, run an MR x NR register-tile micro-kernel);
// each ISA file only provides the micro-kernel and its tile sizes (gemm_kernel below).
#pragma once
#include "ftune.h"

// ---- dispatchers (gemm_ref.cc): check every size, then run the active ISA's variant.
// a (M,K)|(K,M) f32, b (K,N)|(N,K) f32, bias (N)|null, c (M,N) f32
ft_status gemm_f32(const float* a, size_t na, const float* b, size_t nb, const float* bias, size_t nbias,
                   float* c, size_t nc, int64_t M, int64_t N, int64_t K, bool transA, bool transB, bool accumulate);
// a, b bf16 bit patterns (same shapes as gemm_f32); products accumulate in f32 -> c (M,N)
ft_status gemm_bf16(const uint16_t* a, size_t na, const uint16_t* b, size_t nb, const float* bias, size_t nbias,
                    float* c, size_t nc, int64_t M, int64_t N, int64_t K, bool transA, bool transB, bool accumulate);

// Mixed precision: a and b each f32 or bf16 (a_f32 / b_f32 say which; shapes as gemm_f32);
// every f32 operand is rounded to bf16 (nearest even, exactly as cast_f32_bf16) while it is
// packed, so the result is bit-identical to casting it first and calling gemm_bf16, without
// the cast pass or the bf16 copy. Both bf16 is gemm_bf16; both f32 rounds both.
ft_status gemm_bf16_mixed(const void* a, bool a_f32, size_t na, const void* b, bool b_f32, size_t nb, const float* bias,
                          size_t nbias, float* c, size_t nc, int64_t M, int64_t N, int64_t K, bool transA, bool transB,
                          bool accumulate);

struct q4_weight;
// One output of gemm_multi: c (M,N) [+]= op(A) op(b), b (K,N)|(N,K) f32 or bf16; or,
// with q4 set, c (M,N) = A W^T (forward, N = W's rows) or A W (q4_backward, N = W's
// columns) with the 4-bit W decoded to bf16, as q4_linear / q4_linear_bwd with bf16 compute.
struct gemm_multi_out {
  const void* b;
  bool b_f32;
  size_t nb;
  float* c;
  size_t nc;
  int64_t N;
  bool transB;
  bool accumulate;
  const q4_weight* q4 = nullptr;
  bool q4_backward = false;
};
constexpr int GEMM_MULTI_MAX = 8;

// Several products sharing the operand A, each bit-identical to its own call: the blocked
// driver packs A once for all of them, as if their B were concatenated along N. With bf16
// each is gemm_bf16_mixed (4-bit outputs allowed); without, gemm_f32, and A and every b
// must be f32 (FT_ERR_ARG otherwise). A fused LoRA layer computes x W^T and x A^T this
// way, and dY W with dY B. 1 <= n <= GEMM_MULTI_MAX.
ft_status gemm_multi(const void* a, bool a_f32, size_t na, int64_t M, int64_t K, bool transA,
                     const gemm_multi_out* outs, int n, bool bf16);

// The low-rank branch of a LoRA layer in one call: h (M,R) = s (x A^T), then y (M,N) +=
// h B^T; x (M,K), A (R,K), B (N,R), each f32 or bf16. Each product runs through the
// dispatcher the separate ops use (gemm_f32 when bf16 is false and both operands are f32,
// else gemm_bf16_mixed) and the scale through grad_scale_f32, so h and y equal the three
// separate calls bit for bit; decoding one token it saves two calls per adapted layer.
// With a base weight w (N,K) (f32 or bf16, not null) y is first overwritten with x W^T,
// as gemm_multi runs x [W; A]^T (or, where gemm_multi takes no such operands, the two
// products one by one): the whole forward of a LoRA linear without bias or dropout. h null:
// a scratch of the call's own (nothing reads h afterwards).
ft_status gemm_low_rank(const void* x, bool x_f32, size_t nx, const void* a, bool a_f32, size_t na, const void* b,
                        bool b_f32, size_t nb, float* h, size_t nh, float* y, size_t ny, int64_t M, int64_t K,
                        int64_t R, int64_t N, double s, bool bf16, const void* w = nullptr, bool w_f32 = false,
                        size_t nw = 0);

// ---- casts (cast_ref.cc dispatchers): x (n) -> y (n)
ft_status cast_f32_bf16(const float* x, size_t nx, uint16_t* y, size_t ny, int64_t n);
ft_status cast_bf16_f32(const uint16_t* x, size_t nx, float* y, size_t ny, int64_t n);
ft_status cast_f16_f32(const uint16_t* x, size_t nx, float* y, size_t ny, int64_t n);

// ---- variants. Dims are already checked; a (M,K)|(K,M), b (K,N)|(N,K), c (M,N).
void gemm_f32_ref(const float* a, const float* b, const float* bias, float* c, int64_t M, int64_t N, int64_t K,
                  bool transA, bool transB, bool accumulate);
void gemm_bf16_ref(const uint16_t* a, const uint16_t* b, const float* bias, float* c, int64_t M, int64_t N,
                   int64_t K, bool transA, bool transB, bool accumulate);
// x (n) -> y (n)
void cast_f32_bf16_ref(const float* x, uint16_t* y, int64_t n);
void cast_f32_bf16_avx2(const float* x, uint16_t* y, int64_t n);
void cast_f32_bf16_avx512(const float* x, uint16_t* y, int64_t n);
void cast_bf16_f32_ref(const uint16_t* x, float* y, int64_t n);
void cast_bf16_f32_avx2(const uint16_t* x, float* y, int64_t n);
void cast_bf16_f32_avx512(const uint16_t* x, float* y, int64_t n);
void cast_f16_f32_ref(const uint16_t* x, float* y, int64_t n);
void cast_f16_f32_avx2(const uint16_t* x, float* y, int64_t n);
void cast_f16_f32_avx512(const uint16_t* x, float* y, int64_t n);

// IEEE binary16 -> f32, exact (subnormals, inf); a NaN keeps its payload and gets the
// quiet bit, as vcvtph2ps does.
inline float ft_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  uint32_t u;
  if (exp == 0x1fu) {
    u = sign | 0x7f800000u | (man << 13) | (man ? 0x400000u : 0u);
  } else if (exp != 0) {
    u = sign | ((exp + 112u) << 23) | (man << 13);
  } else if (man == 0) {
    u = sign;
  } else {  // subnormal: normalise the mantissa
    int e = 113;
    while (!(man & 0x400u)) {
      man <<= 1;
      e--;
    }
    u = sign | ((uint32_t)e << 23) | ((man & 0x3ffu) << 13);
  }
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}

// ---- the blocked driver and its micro-kernels.
//
// Packed panels: A as MR-row panels, B as NR-column panels, both k-major. With kpair = 1
// (f32) element (i,k) of an A panel sits at [k*MR + i]; with kpair = 2 (bf16 pairs for
// vdpbf16ps) at [((k/2)*MR + i)*2 + k%2], and K is zero-padded to even. B likewise with NR.
//
// micro-kernel: ap (MR x kc packed), bp (kc x NR packed) -> c (MR,NR) tile, row stride ldc;
// c = ap*bp when beta0, c += ap*bp otherwise. kc counts k steps (even when kpair = 2).
typedef void (*gemm_micro_fn)(int64_t kc, const void* ap, const void* bp, float* c, int64_t ldc, bool beta0);
typedef void (*gemm_micro_lda_fn)(int64_t kc, const float* a, int64_t lda, const void* bp, float* c, int64_t ldc,
                                  bool beta0);

// GEMM_SRC_F32_BF16: f32 values rounded to bf16 by the packer (ft_f32_to_bf16; widened
// back to f32 for a kpair = 1 kernel, so every ISA multiplies the same bf16 values).
enum gemm_src : int32_t { GEMM_SRC_F32 = 0, GEMM_SRC_BF16 = 1, GEMM_SRC_Q4 = 2, GEMM_SRC_F32_BF16 = 3 };

// A 4-bit weight (quant.h) and its decoder: elements [i0, i0+len) of the flattened
// weight -> out (len f32 values, or bf16 bit patterns for kind Q4_OUT_BF16).
struct q4_weight;
typedef void (*q4_decode_fn)(const q4_weight& w, int64_t i0, int64_t len, int32_t kind, void* out);

// Packer for GEMM_SRC_F32_BF16 into k pairs (kpair = 2): f32 element (r, k) at
// p[r*rs + k*ks], with rs == 1 or ks == 1, rounded as ft_f32_to_bf16 -> dst (kcp/2, R, 2)
// for rows [0, nr) and k [0, kc); the caller has zeroed rows nr..R-1 and the odd k tail.
typedef void (*gemm_pack_fn)(const float* p, int64_t rs, int64_t ks, int64_t nr, int64_t R, int64_t kc, uint16_t* dst);
// Packer for a GEMM_SRC_F32 source into an f32 panel (kpair = 1): element (r, k) at
// p[r*rs + k*ks], with rs == 1 or ks == 1, -> dst[k*R + r] for rows [0, nr), k [0, kc);
// rows nr..R-1 are left to the caller (zeroed).
typedef void (*gemm_pack_f32_fn)(const float* p, int64_t rs, int64_t ks, int64_t nr, int64_t R, int64_t kc, float* dst);
// The same for a GEMM_SRC_BF16 source (bf16 element (r, k) at p[r*rs + k*ks]), no rounding.
typedef void (*gemm_pack_bf16_fn)(const uint16_t* p, int64_t rs, int64_t ks, int64_t nr, int64_t R, int64_t kc,
                                  uint16_t* dst);

struct gemm_kernel {
  gemm_micro_fn micro;
  int32_t mr, nr;     // register tile
  int32_t kc, mc, nc; // cache blocks (kc even; mc a multiple of mr; nc a multiple of nr)
  int32_t kpair;      // 1: packed f32, 2: packed bf16 pairs
  gemm_pack_fn pack_f32_bf16;  // vector packer for f32 -> bf16 pairs, or null (scalar)
  gemm_pack_bf16_fn pack_bf16; // vector packer for bf16 -> bf16 pairs, or null (scalar)
  gemm_pack_f32_fn pack_f32;   // vector packer for f32 -> f32 with k or rows contiguous (kpair = 1), or null
  // The micro-kernel for a panel's first nr/2 columns only: c (MR, NR/2), each element the
  // same sum as micro's (a rank-16 LoRA factor fills half a 32-column panel); or null.
  gemm_micro_fn micro_half = nullptr;
  // kpair = 1 only: the micro-kernel reading the A tile in place instead of from a packed
  // panel, element (i, k) at a[k*lda + i] (rows-contiguous op(A): a TN product's A^T),
  // each element the same sum as micro's; or null.
  gemm_micro_lda_fn micro_lda = nullptr;
};

// Micro-kernel tables per ISA (gemm_avx2.cc, gemm_avx512.cc).
extern const gemm_kernel gemm_kernel_f32_avx2;
extern const gemm_kernel gemm_kernel_f32_avx512;
extern const gemm_kernel gemm_kernel_bf16_avx512;  // vdpbf16ps; needs ft_cpu_has_avx512bf16()

// Runs the blocked product with kernel `k`. a is of kind asrc, b of kind bsrc (f32, bf16 or
// f32 rounded to bf16); bf16 values meet a kpair = 1 kernel widened to f32, and an f32
// source meets a kpair = 2 kernel only as GEMM_SRC_F32_BF16. Returns FT_ERR_ALLOC when the
// pack buffers cannot be allocated.
ft_status gemm_blocked(const gemm_kernel& k, gemm_src asrc, const void* a, gemm_src bsrc, const void* b,
                       const float* bias, float* c, int64_t M, int64_t N, int64_t K, bool transA, bool transB,
                       bool accumulate);

// The blocked product with a 4-bit B: forward c (M,N) = a (M,K) W(N,K)^T [+ bias], or
// with backward c (M,K) = a (M,N) W(N,K). a is f32 or bf16 (asrc); the B packer decodes
// W with `dec` into `kind` values (Q4_OUT_BF16 when k.kpair = 2). Dims already checked.
// c_s (M, N_s) [+]= op(A) op(B_s) for n outputs sharing A, packed once (gemm_multi).
struct gemm_blocked_out {
  gemm_src bsrc;
  const void* b;
  bool transB;
  float* c;
  int64_t N;
  bool accumulate;
  const q4_weight* q4;  // GEMM_SRC_Q4: the weight, its decoder and decode kind
  q4_decode_fn dec;
  int32_t kind;
  bool q4_backward;
};
ft_status gemm_blocked_multi(const gemm_kernel& k, gemm_src asrc, const void* a, bool transA, int64_t M, int64_t K,
                             const gemm_blocked_out* outs, int n);

ft_status gemm_blocked_q4(const gemm_kernel& k, gemm_src asrc, const void* a, const q4_weight& w, q4_decode_fn dec,
                          int32_t kind, bool backward, const float* bias, float* c, int64_t M);

// ---- products with one short side summed over a long K (gemm_skinny_avx512.cc):
// c [+]= X^T Y with X (T, W), Y (T, R) row-major, R <= 16: c is (W, R) when c_wr, else
// (R, W). Each source f32 (rounded to bf16 first when `round`) or bf16. The dispatchers
// run op(A) = A^T, op(B) = B products with M or N <= 16 and no bias through it on AVX-512.
struct gemm_skinny_args {
  const void* x;
  bool x_f32;
  const void* y;
  bool y_f32;
  bool round;
  int64_t T, W, R;
  float* c;
  bool c_wr;
  bool accumulate;
};
ft_status gemm_skinny_tn_avx512(const gemm_skinny_args& g);

// ---- the small-M path (gemv_driver.cc): y (M,N) [+]= x (M,K) W(N,K)^T [+ bias], no packing.
//
// A tile kernel dots mb <= kernel.mb rows of x with nr <= GEMV_ROWS rows of W over all of
// K, each sum in one fixed lane order: x (mb,K), w (nr,K) (both row stride K) ->
// out (mb,GEMV_ROWS), row m at out[m*GEMV_ROWS]; columns nr.. are left unspecified.
constexpr int GEMV_ROWS = 4;    // rows of W per tile: 4 streams, each read once
constexpr int GEMV_MAX_MB = 4;  // rows of x per tile, at most
// A wide tile dots the same rows of x with GEMV_WIDE_ROWS rows of W, out (mb,GEMV_WIDE_ROWS),
// and gives the same bits as the 4-row tile: per lane the same K chain, then the 16 lane
// sums of 16 rows reduced together in the 4-row tile's pairing order (a transpose-
// reduction: ~3 shuffles and adds per row instead of 8). Where K is short the horizontal
// sums dominate a 4-row tile (a rank-16 LoRA B at K = 16 is one FMA per 8 reduction ops).
constexpr int GEMV_WIDE_ROWS = 16;
typedef void (*gemv_tile_fn)(int64_t K, const void* x, int mb, const void* w, int nr, float* out);

struct gemv_kernel {
  gemv_tile_fn tile;
  int32_t mb;          // rows of x per tile (<= GEMV_MAX_MB)
  int32_t elem_bytes;  // 4: f32 x and W, 2: bf16 x and W
  gemv_tile_fn wide;   // GEMV_WIDE_ROWS rows of W per tile, same sums as `tile`; null: none
};

extern const gemv_kernel gemv_kernel_f32_ref, gemv_kernel_bf16_ref;    // gemv_ref.cc
extern const gemv_kernel gemv_kernel_f32_avx2, gemv_kernel_bf16_avx2;  // gemv_avx2.cc (bf16 widened to f32)
extern const gemv_kernel gemv_kernel_f32_avx512;                       // gemv_avx512.cc
extern const gemv_kernel gemv_kernel_bf16_avx512;                      // vdpbf16ps; needs ft_cpu_has_avx512bf16()

// Below this many multiply-adds one thread finishes before a team would start (~5 us, and
// more when the other threads have gone to sleep: a small model's decode runs almost
// nothing in parallel).
constexpr int64_t GEMV_PARALLEL_MIN_WORK = (int64_t)1 << 17;
// A LoRA layer's rank-R products at decode, next to a base product that has just run on
// every thread: split from this size on. Their A and B come from memory (the base weights
// of a token evict them from L3), and one thread's short streams read at ~10 GB/s
// (bench/lowrank-decode.ts: medium layers -22 us per block of seven, in cache too).
constexpr int64_t GEMV_LORA_PARALLEL_MIN_WORK = (int64_t)1 << 13;

// Threads split N into GEMV_ROWS-row groups (GEMV_WIDE_ROWS with a wide tile, for short K
// or one row of x; static schedule) when M * N * K >= parallel_min; M runs in kernel.mb
// blocks.
// x (M,K), w (N,K), bias (N)|null -> y (M,N). Dims are already checked.
// lr: a decoded LoRA layer's rank-R term y += h B^T (h (M,R), B (N,R) f32, lr.g an f32
// kernel), added by the row groups of the base product as they finish their rows, so B is
// read beside W instead of in a product (and a parallel region) of its own: the same bits
// as gemv_rows(h, B, accumulate) after it.
struct gemv_lowrank {
  const gemv_kernel* g;
  const float* h;
  const float* b;
  int64_t R;
};
ft_status gemv_rows(const gemv_kernel& g, const void* x, const void* w, const float* bias, float* y, int64_t M,
                    int64_t N, int64_t K, bool accumulate, int64_t parallel_min = GEMV_PARALLEL_MIN_WORK,
                    const gemv_lowrank* lr = nullptr);
// The same with a 4-bit W (N,K): each group of GEMV_ROWS rows is decoded once (`kind`
// values matching the tile: f32, or bf16 patterns for a bf16 tile) into a per-thread
// buffer, then dotted with every row of x (M,K). bias (N)|null -> y (M,N) (overwritten).
// A fused tile (`fused`, may be null) decodes W in registers instead: x (mb,K), W rows
// [n0, n0+nr) -> out (mb,GEMV_ROWS); used when K % 32 == 0.
typedef void (*q4_gemv_fn)(const q4_weight& w, int64_t n0, int nr, const void* x, int mb, float* out);
ft_status gemv_rows_q4(const gemv_kernel& g, q4_gemv_fn fused, const void* x, const q4_weight& w, q4_decode_fn dec,
                       int32_t kind, const float* bias, float* y, int64_t M);
