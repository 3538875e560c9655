// Blocked GEMM driver shared by every fast ISA (BLIS loop order, Van Zee & van de Geijn
// 2015): for each NC-wide column block and KC-deep slice, the threads pack a KC x NC panel
// of op(B) together, then each packs MC x KC blocks of op(A) and runs the ISA's MR x NR
// micro-kernel over them (an f32 op(A) = A^T, already laid out as the panels would be, is
// read in place by a micro-kernel with a row stride where the ISA has one and the column
// block is narrow). Compiled without ISA flags: it only moves memory; the arithmetic is in
// the micro-kernels (gemm_avx2.cc, gemm_avx512.cc).
//
// Determinism: threads split whole MR-row tiles (or NR-column panels when M is small) and
// never the K dimension; every C element is summed over the same K slices in the same
// order, each slice from zero and then added to C, so the result does not depend on the
// thread count (nor on whether a tile is an edge tile).
#include <omp.h>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include "gemm.h"
#include "pool.h"
#include "quant.h"

namespace {

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// k block of the transposing packers: KB x R packed values (<= 4 KiB) stay in L1 while
// the R source rows are read 64 bytes at a time.
constexpr int64_t KB = 16;

// The source of a packed panel: element (r, k) of op(X) sits at base[r*rs + k*ks]; for a
// 4-bit source it is element r*rs + k*ks of the flattened weight q4, decoded by dec.
struct Src {
  gemm_src type;
  const void* base;
  int64_t rs, ks;
  const q4_weight* q4;
  q4_decode_fn dec;
  int32_t kind;
};

// K slices this shallow or shallower walk C by row tiles (run_segments).
constexpr int64_t SHALLOW_K = 64;

// The widest column block whose f32 TN products read A in place (run_segments).
constexpr int64_t DIRECT_A_MAX_N = 1024;

// The deepest KC of any micro-kernel table (gemm_avx512.cc bf16): bounds the decode buffers.
constexpr int64_t KC_MAX = 1024;

// Packs a 4-bit source like pack_f32 (f32 values, bf16-rounded for kind Q4_OUT_F32_BF16):
// decoding runs along the weight's rows, then stores them k-major. dst (kc, R)
void pack_q4_f32(const Src& s, int64_t r0, int64_t nr, int64_t R, int64_t k0, int64_t kc, float* dst) {
  if (s.ks == 1) {  // forward: panel row r is weight row r0+r, contiguous in k
    alignas(64) float run[KC_MAX];
    for (int64_t r = 0; r < nr; r++) {
      s.dec(*s.q4, (r0 + r) * s.rs + k0, kc, s.kind, run);
      for (int64_t k = 0; k < kc; k++) dst[k * R + r] = run[k];
    }
  } else {  // backward: k step k is weight row k0+k, its columns r0.. contiguous
    for (int64_t k = 0; k < kc; k++) s.dec(*s.q4, (k0 + k) * s.ks + r0, nr, s.kind, dst + k * R);
  }
}

// The same as bf16 k pairs (kind Q4_OUT_BF16). dst (kcp/2, R, 2), zero-padded by the caller.
void pack_q4_pairs(const Src& s, int64_t r0, int64_t nr, int64_t R, int64_t k0, int64_t kc, uint16_t* dst) {
  alignas(64) uint16_t run[KC_MAX];
  if (s.ks == 1) {
    for (int64_t r = 0; r < nr; r++) {
      s.dec(*s.q4, (r0 + r) * s.rs + k0, kc, s.kind, run);
      for (int64_t k = 0; k < kc; k++) dst[((k >> 1) * R + r) * 2 + (k & 1)] = run[k];
    }
  } else {
    for (int64_t k = 0; k < kc; k++) {
      s.dec(*s.q4, (k0 + k) * s.ks + r0, nr, s.kind, run);
      for (int64_t r = 0; r < nr; r++) dst[((k >> 1) * R + r) * 2 + (k & 1)] = run[r];
    }
  }
}

// Packs rows [r0, r0+nr) x k [k0, k0+kc) of src into an R-row f32 panel (k-major),
// zero-padding rows nr..R-1. dst (kc, R)
void pack_f32(const Src& s, int64_t r0, int64_t nr, int64_t R, int64_t k0, int64_t kc, float* dst) {
  if (nr < R) {
    for (int64_t k = 0; k < kc; k++) std::memset(dst + k * R + nr, 0, (size_t)(R - nr) * 4);
  }
  if (s.type == GEMM_SRC_Q4) {
    pack_q4_f32(s, r0, nr, R, k0, kc, dst);
  } else if (s.type == GEMM_SRC_F32) {
    const float* p = (const float*)s.base + r0 * s.rs + k0 * s.ks;
    if (s.ks == 1) {  // transposing: k blocks keep the strided stores inside L1
      for (int64_t kb = 0; kb < kc; kb += KB) {
        const int64_t ke = kc - kb < KB ? kc : kb + KB;
        for (int64_t r = 0; r < nr; r++)
          for (int64_t k = kb; k < ke; k++) dst[k * R + r] = p[r * s.rs + k];
      }
    } else {
      for (int64_t k = 0; k < kc; k++)
        for (int64_t r = 0; r < nr; r++) dst[k * R + r] = p[r * s.rs + k * s.ks];
    }
  } else if (s.type == GEMM_SRC_F32_BF16) {  // round to bf16, then widen back
    const float* p = (const float*)s.base + r0 * s.rs + k0 * s.ks;
    if (s.ks == 1) {
      for (int64_t kb = 0; kb < kc; kb += KB) {
        const int64_t ke = kc - kb < KB ? kc : kb + KB;
        for (int64_t r = 0; r < nr; r++)
          for (int64_t k = kb; k < ke; k++) dst[k * R + r] = ft_bf16_to_f32(ft_f32_to_bf16(p[r * s.rs + k]));
      }
    } else {
      for (int64_t k = 0; k < kc; k++)
        for (int64_t r = 0; r < nr; r++) dst[k * R + r] = ft_bf16_to_f32(ft_f32_to_bf16(p[r * s.rs + k * s.ks]));
    }
  } else {
    const uint16_t* p = (const uint16_t*)s.base + r0 * s.rs + k0 * s.ks;
    if (s.ks == 1) {
      for (int64_t kb = 0; kb < kc; kb += KB) {
        const int64_t ke = kc - kb < KB ? kc : kb + KB;
        for (int64_t r = 0; r < nr; r++)
          for (int64_t k = kb; k < ke; k++) dst[k * R + r] = ft_bf16_to_f32(p[r * s.rs + k]);
      }
    } else {
      for (int64_t k = 0; k < kc; k++)
        for (int64_t r = 0; r < nr; r++) dst[k * R + r] = ft_bf16_to_f32(p[r * s.rs + k * s.ks]);
    }
  }
}

// Packs an f32 source rounded to bf16 (ft_f32_to_bf16, as the cast kernels) as k pairs,
// the layout of pack_bf16_pairs below. dst (kcp/2, R, 2), zero-padded by the caller.
void pack_f32_pairs(const Src& s, int64_t r0, int64_t nr, int64_t R, int64_t k0, int64_t kc, uint16_t* dst) {
  const float* p = (const float*)s.base + r0 * s.rs + k0 * s.ks;
  if (s.ks == 1) {
    for (int64_t kb = 0; kb < kc; kb += KB) {
      const int64_t ke = kc - kb < KB ? kc : kb + KB;
      for (int64_t r = 0; r < nr; r++)
        for (int64_t k = kb; k < ke; k++) dst[((k >> 1) * R + r) * 2 + (k & 1)] = ft_f32_to_bf16(p[r * s.rs + k]);
    }
  } else {
    for (int64_t k = 0; k < kc; k++)
      for (int64_t r = 0; r < nr; r++) dst[((k >> 1) * R + r) * 2 + (k & 1)] = ft_f32_to_bf16(p[r * s.rs + k * s.ks]);
  }
}

// Packs a bf16 source the same way but as k pairs for vdpbf16ps: element (r, k) at
// [((k/2)*R + r)*2 + k%2]; rows nr..R-1 and the odd tail k = kc (when kc is odd) are zero.
// dst (kcp/2, R, 2) with kcp = kc rounded up to even.
void pack_bf16_pairs(const Src& s, int64_t r0, int64_t nr, int64_t R, int64_t k0, int64_t kc, uint16_t* dst) {
  int64_t kcp = round_up(kc, 2);
  if (nr < R || kcp != kc) std::memset(dst, 0, (size_t)(kcp * R) * 2);
  if (s.type == GEMM_SRC_Q4) {
    pack_q4_pairs(s, r0, nr, R, k0, kc, dst);
    return;
  }
  if (s.type == GEMM_SRC_F32_BF16) {
    pack_f32_pairs(s, r0, nr, R, k0, kc, dst);
    return;
  }
  const uint16_t* p = (const uint16_t*)s.base + r0 * s.rs + k0 * s.ks;
  if (s.ks == 1) {
    for (int64_t kb = 0; kb < kc; kb += KB) {
      const int64_t ke = kc - kb < KB ? kc : kb + KB;
      for (int64_t r = 0; r < nr; r++)
        for (int64_t k = kb; k < ke; k++) dst[((k >> 1) * R + r) * 2 + (k & 1)] = p[r * s.rs + k];
    }
  } else {
    for (int64_t k = 0; k < kc; k++)
      for (int64_t r = 0; r < nr; r++) dst[((k >> 1) * R + r) * 2 + (k & 1)] = p[r * s.rs + k * s.ks];
  }
}

// Packs a 4-bit source as bf16 k pairs with the ISA's vector packer: the panel's values
// are decoded into a bf16 block first (weight rows contiguous in k for the forward
// orientation, in the panel's rows for the backward one), which the packer then transposes
// or interleaves. The caller has zeroed rows nr..R-1 and the odd k tail.
void pack_q4_vector(const gemm_kernel& g, const Src& s, int64_t r0, int64_t nr, int64_t R, int64_t k0, int64_t kc,
                    uint16_t* dst) {
  alignas(64) uint16_t block[32 * KC_MAX];  // (nr, kc) forward or (kc, nr) backward; nr <= NR <= 32
  if (s.ks == 1) {
    for (int64_t r = 0; r < nr; r++) s.dec(*s.q4, (r0 + r) * s.rs + k0, kc, s.kind, block + r * kc);
    g.pack_bf16(block, kc, 1, nr, R, kc, dst);
  } else {
    for (int64_t k = 0; k < kc; k++) s.dec(*s.q4, (k0 + k) * s.ks + r0, nr, s.kind, block + k * nr);
    g.pack_bf16(block, 1, nr, nr, R, kc, dst);
  }
}

void pack_panel(const gemm_kernel& g, const Src& s, int64_t r0, int64_t nr, int64_t R, int64_t k0, int64_t kc,
                void* dst) {
  const bool strided = s.rs == 1 || s.ks == 1;
  if (g.kpair == 2) {
    const bool q4 = s.type == GEMM_SRC_Q4 && s.kind == Q4_OUT_BF16 && g.pack_bf16 && R <= 32 && kc <= KC_MAX;
    const bool f32 = s.type == GEMM_SRC_F32_BF16 && g.pack_f32_bf16 && strided;
    const bool bf16 = s.type == GEMM_SRC_BF16 && g.pack_bf16 && strided;
    if (!q4 && !f32 && !bf16) {
      pack_bf16_pairs(s, r0, nr, R, k0, kc, (uint16_t*)dst);
      return;
    }
    // The vector packers write rows [0, nr) and k [0, kc) only.
    const int64_t kcp = round_up(kc, 2);
    if (nr < R || kcp != kc) std::memset(dst, 0, (size_t)(kcp * R) * 2);
    if (q4) pack_q4_vector(g, s, r0, nr, R, k0, kc, (uint16_t*)dst);
    else if (f32) g.pack_f32_bf16((const float*)s.base + r0 * s.rs + k0 * s.ks, s.rs, s.ks, nr, R, kc, (uint16_t*)dst);
    else g.pack_bf16((const uint16_t*)s.base + r0 * s.rs + k0 * s.ks, s.rs, s.ks, nr, R, kc, (uint16_t*)dst);
    return;
  }
  if (s.type == GEMM_SRC_F32 && (s.ks == 1 || s.rs == 1) && g.pack_f32) {
    if (nr < R) {
      for (int64_t k = 0; k < kc; k++) std::memset((float*)dst + k * R + nr, 0, (size_t)(R - nr) * 4);
    }
    g.pack_f32((const float*)s.base + r0 * s.rs + k0 * s.ks, s.rs, s.ks, nr, R, kc, (float*)dst);
  } else {
    pack_f32(s, r0, nr, R, k0, kc, (float*)dst);
  }
}

// c (M,N) = bias broadcast over rows (or += when accumulate).
void add_bias(const float* bias, float* c, int64_t M, int64_t N, bool accumulate) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < M; i++) {
    float* row = c + i * N;
    if (accumulate) {
      for (int64_t j = 0; j < N; j++) row[j] += bias[j];
    } else {
      std::memcpy(row, bias, (size_t)N * 4);
    }
  }
}

// The part of the output one thread computes in a block: MR tiles [t0, t1) of rows and
// NR panels [p0, p1) of the current column block.
struct Share {
  int64_t t0, t1, p0, p1;
};

Share share_of(bool split_m, int64_t tiles, int64_t panels, int t, int T) {
  if (split_m) return Share{tiles * t / T, tiles * (t + 1) / T, 0, panels};
  return Share{0, tiles, panels * t / T, panels * (t + 1) / T};
}

// One output of a blocked product: c (M, n) [+]= op(A) op(B) with this B.
struct Seg {
  Src b;
  float* c;
  int64_t n;
  bool accumulate;
  int64_t p0;  // its first NR panel in the product's panel sequence
};

// The products c_s (M, n_s) [+]= op(A) op(B_s) [+ bias on segment 0] of several B sharing
// one A, over packed panels: the segments' NR-column panels run as one sequence (each
// segment padded to whole panels), so A is packed once for all of them. Each C element
// is summed exactly as in a product of its own segment alone (same K slices, same order).
ft_status run_segments(const gemm_kernel& g, const Src& sa, Seg* segs, int nsegs, const float* bias, int64_t M,
                       int64_t K) {
  const int64_t MR = g.mr, NR = g.nr, es = g.kpair == 2 ? 2 : 4;
  int64_t P = 0;  // panels in all
  for (int s = 0; s < nsegs; s++) {
    segs[s].p0 = P;
    P += (segs[s].n + NR - 1) / NR;
  }
  if (M == 0 || P == 0) return FT_OK;
  if (K == 0) {  // c = bias or 0, c += bias or nothing
    for (int s = 0; s < nsegs; s++) {
      if (s == 0 && bias) add_bias(bias, segs[0].c, M, segs[0].n, segs[0].accumulate);
      else if (!segs[s].accumulate) std::memset(segs[s].c, 0, (size_t)(M * segs[s].n) * 4);
    }
    return FT_OK;
  }
  const int64_t ncp = g.nc / NR;  // panels per column block
  // Column blocks of ncp panels; a remainder under a quarter block joins the last full one.
  // A LoRA product's A segment is one panel past a 2048-wide weight: a block of its own
  // would pack all of A again for 32 columns.
  auto block_end = [&](int64_t pb) -> int64_t { return P - pb < ncp + ncp / 4 ? P : pb + ncp; };
  const int64_t kc_max = round_up(K < g.kc ? K : g.kc, 2);
  int64_t nc_max = 0;
  for (int64_t pb = 0; pb < P; pb = block_end(pb)) nc_max = std::max(nc_max, (block_end(pb) - pb) * NR);
  const int64_t mc_max = round_up(M < g.mc ? M : g.mc, MR);
  const int64_t tiles = (M + MR - 1) / MR;
  int T = omp_get_max_threads();
  if (T > tiles * (nc_max / NR)) T = (int)(tiles * (nc_max / NR));
  // Split rows when there are enough MR tiles to keep every thread busy, else columns.
  const bool split_m = tiles >= 4 * T || tiles >= nc_max / NR;

  const size_t b_bytes = (size_t)(nc_max * kc_max * es), a_bytes = (size_t)(mc_max * kc_max * es);
  const PoolScratch bscratch((size_t)round_up((int64_t)b_bytes, 64)), ascratch((size_t)(round_up((int64_t)a_bytes, 64) * T));
  char *bpack = bscratch.get(), *apack = ascratch.get();
  if (!bpack || !apack) return FT_ERR_ALLOC;
  if (bias) {  // after the allocations, so a failed call leaves c untouched
    add_bias(bias, segs[0].c, M, segs[0].n, segs[0].accumulate);
    segs[0].accumulate = true;
  }
  // A rows contiguous (a TN product's A^T) in f32 under a narrow column block: the
  // micro-kernel reads whole tiles in place, so only a partial last tile is packed. The
  // pack's copy was 18-25% of such products (perf, TN 288x288x2048 and 32000x288x512),
  // paid once per block of few panels; reading in place costs a page per k row and panel
  // instead, which wins up to ~24 panels (N = 288: +3-17%, 768: +2-12%) and loses 2-4% at
  // 64 (N = 2048), measured alternating.
  const bool direct_a = g.micro_lda && g.kpair == 1 && sa.type == GEMM_SRC_F32 && sa.rs == 1 && nc_max <= DIRECT_A_MAX_N;
  // panel p (global) -> its segment
  auto seg_of = [&](int64_t p) -> const Seg& {
    int s = nsegs - 1;
    while (s > 0 && segs[s].p0 > p) s--;
    return segs[s];
  };

#pragma omp parallel num_threads(T)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    char* my_a = apack + round_up((int64_t)a_bytes, 64) * t;
    alignas(64) float edge[1024];  // one MR x NR tile (MR*NR <= 1024)
    // An edge tile's first mr x nr values from `edge` into (or onto) c at row stride ldc.
    auto from_edge = [&](float* ct, int64_t ldc, int64_t mr, int64_t nr, bool beta0) {
      for (int64_t i = 0; i < mr; i++)
        for (int64_t j = 0; j < nr; j++) ct[i * ldc + j] = beta0 ? edge[i * NR + j] : ct[i * ldc + j] + edge[i * NR + j];
    };
    for (int64_t pb = 0; pb < P; pb = block_end(pb)) {
      const int64_t panels = block_end(pb) - pb;
      const Share sh = share_of(split_m, tiles, panels, t, nt);
      for (int64_t pc = 0; pc < K; pc += g.kc) {
        const int64_t kc = K - pc < g.kc ? K - pc : g.kc, kcp = round_up(kc, g.kpair);
#pragma omp for schedule(static)
        for (int64_t p = 0; p < panels; p++) {
          const Seg& sg = seg_of(pb + p);
          const int64_t j0 = (pb + p - sg.p0) * NR, nr = sg.n - j0 < NR ? sg.n - j0 : NR;
          pack_panel(g, sg.b, j0, nr, NR, pc, kc, bpack + p * NR * kcp * es);
        }
        for (int64_t ic = sh.t0 * MR; ic < sh.t1 * MR && ic < M; ic += g.mc) {
          const int64_t m_end = sh.t1 * MR < M ? sh.t1 * MR : M;
          const int64_t mc = m_end - ic < g.mc ? m_end - ic : g.mc, mtiles = (mc + MR - 1) / MR;
          for (int64_t r = 0; r < mtiles; r++) {
            const int64_t i0 = ic + r * MR, mr = M - i0 < MR ? M - i0 : MR;
            if (!(direct_a && mr == MR)) pack_panel(g, sa, i0, mr, MR, pc, kc, my_a + r * MR * kcp * es);
          }
          // One tile: C rows i0.. of panel p. Deep slices walk the panels outermost (each B
          // micro-panel reused over the A block, from L1); shallow ones (K of a rank-16
          // LoRA product) are C traffic only, and walk it row tile by row tile, so C
          // streams along its rows instead of down 32-column strips, one row per page.
          auto tile = [&](int64_t p, int64_t r) {
            const Seg& sg = seg_of(pb + p);
            const int64_t j0 = (pb + p - sg.p0) * NR, nr = sg.n - j0 < NR ? sg.n - j0 : NR, ldc = sg.n;
            const bool beta0 = pc == 0 && !sg.accumulate;
            const char* bp = bpack + p * NR * kcp * es;
            const int64_t i0 = ic + r * MR, mr = M - i0 < MR ? M - i0 : MR;
            const char* ap = my_a + r * MR * kcp * es;
            float* ct = sg.c + i0 * ldc + j0;
            if (direct_a && mr == MR) {  // the tile's rows of A^T read in place, full-width kernel
              const float* a = (const float*)sa.base + i0 + pc * sa.ks;
              if (nr == NR) {
                g.micro_lda(kcp, a, sa.ks, bp, ct, ldc, beta0);
                return;
              }
              g.micro_lda(kcp, a, sa.ks, bp, edge, NR, true);
              from_edge(ct, ldc, mr, nr, beta0);
              return;
            }
            if (mr == MR && nr == NR) {
              g.micro(kcp, ap, bp, ct, ldc, beta0);
              return;
            }
            const bool half = g.micro_half && 2 * nr <= NR;  // half the multiplies, the same sums
            if (half && mr == MR && 2 * nr == NR) {
              g.micro_half(kcp, ap, bp, ct, ldc, beta0);
              return;
            }
            if (half) g.micro_half(kcp, ap, bp, edge, NR, true);
            else g.micro(kcp, ap, bp, edge, NR, true);
            from_edge(ct, ldc, mr, nr, beta0);
          };
          if (kcp > SHALLOW_K) {
            for (int64_t p = sh.p0; p < sh.p1; p++)
              for (int64_t r = 0; r < mtiles; r++) tile(p, r);
          } else {
            for (int64_t r = 0; r < mtiles; r++)
              for (int64_t p = sh.p0; p < sh.p1; p++) tile(p, r);
          }
        }
#pragma omp barrier
      }
    }
  }
  return FT_OK;
}

// The blocked product c (M,N) [+]= op(A) op(B) [+ bias]: one segment.
ft_status run_blocked(const gemm_kernel& g, const Src& sa, const Src& sb, const float* bias, float* c, int64_t M,
                      int64_t N, int64_t K, bool accumulate) {
  Seg seg{sb, c, N, accumulate, 0};
  return run_segments(g, sa, &seg, 1, bias, M, K);
}

}  // namespace

ft_status gemm_blocked(const gemm_kernel& g, gemm_src asrc, const void* a, gemm_src bsrc, const void* b,
                       const float* bias, float* c, int64_t M, int64_t N, int64_t K, bool transA, bool transB,
                       bool accumulate) {
  const Src sa = transA ? Src{asrc, a, 1, M, nullptr, nullptr, 0} : Src{asrc, a, K, 1, nullptr, nullptr, 0};
  const Src sb = transB ? Src{bsrc, b, K, 1, nullptr, nullptr, 0} : Src{bsrc, b, 1, N, nullptr, nullptr, 0};
  return run_blocked(g, sa, sb, bias, c, M, N, K, accumulate);
}

ft_status gemm_blocked_multi(const gemm_kernel& g, gemm_src asrc, const void* a, bool transA, int64_t M, int64_t K,
                             const gemm_blocked_out* outs, int n) {
  if (n < 1 || n > GEMM_MULTI_MAX) return FT_ERR_ARG;
  const Src sa = transA ? Src{asrc, a, 1, M, nullptr, nullptr, 0} : Src{asrc, a, K, 1, nullptr, nullptr, 0};
  Seg segs[GEMM_MULTI_MAX];
  for (int s = 0; s < n; s++) {
    const gemm_blocked_out& o = outs[s];
    Src sb = o.transB ? Src{o.bsrc, o.b, K, 1, nullptr, nullptr, 0} : Src{o.bsrc, o.b, 1, o.N, nullptr, nullptr, 0};
    if (o.bsrc == GEMM_SRC_Q4) {  // as gemm_blocked_q4: W (N_w, K_w), forward op(B) = W^T, backward W
      sb = o.q4_backward ? Src{GEMM_SRC_Q4, nullptr, 1, o.q4->K, o.q4, o.dec, o.kind}
                         : Src{GEMM_SRC_Q4, nullptr, o.q4->K, 1, o.q4, o.dec, o.kind};
    }
    segs[s] = Seg{sb, o.c, o.N, o.accumulate, 0};
  }
  return run_segments(g, sa, segs, n, nullptr, M, K);
}

ft_status gemm_blocked_q4(const gemm_kernel& g, gemm_src asrc, const void* a, const q4_weight& w, q4_decode_fn dec,
                          int32_t kind, bool backward, const float* bias, float* c, int64_t M) {
  // forward: op(B) (K,N) = W^T, element (n, k) at n*K + k; backward: op(B) = W (N_w rows of K_w).
  const int64_t N = backward ? w.K : w.N, K = backward ? w.N : w.K;
  const Src sa{asrc, a, K, 1, nullptr, nullptr, 0};
  const Src sb = backward ? Src{GEMM_SRC_Q4, nullptr, 1, w.K, &w, dec, kind} : Src{GEMM_SRC_Q4, nullptr, w.K, 1, &w, dec, kind};
  return run_blocked(g, sa, sb, bias, c, M, N, K, false);
}
