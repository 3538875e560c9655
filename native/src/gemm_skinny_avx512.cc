// AVX-512 products summed over a long shared dimension with one short side (<= 16): the
// low-rank gradients of a LoRA layer, dB = dY^T (s h) (16 columns) and dA = u^T x (16
// rows), summed over every token. The blocked driver would pack all of dY or x for a
// tile that is half empty; here X streams through once, 16 of its columns at a time,
// against the whole short operand held in L2:
//   out(w, r) = sum_t X(t, w) Y(t, r),  X (T, W), Y (T, R), R <= 16,
// with 16 accumulators (one per r) over 16 w lanes, one FMA per (t, r) taking Y(t, r) as
// an embedded broadcast. Every w is summed over t in order, by one thread: results do not
// depend on the thread count. The reference is the general product (gemm_f32_ref,
// gemm_bf16_ref); f32 sources rounded to bf16 round exactly as the cast kernels
// (round_bf16), so a mixed product equals its cast-then-multiply twin bit for bit.
#include <immintrin.h>
#include <omp.h>
#include "gemm.h"
#include "pool.h"
#include "simd_avx512.h"

namespace {

constexpr int64_t RMAX = 16;
constexpr int64_t TC = 16;  // rows of X per chunk

// 16 values of an f32 or bf16 row from p (masked to `m` lanes), as f32; f32 ones rounded
// to bf16 and back when `round`.
inline __m512 load16(const void* p, bool f32, bool round, __mmask16 m) {
  if (!f32) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
  const __m512 v = _mm512_maskz_loadu_ps(m, p);
  return round ? _mm512_castsi512_ps(_mm512_slli_epi32(round_bf16(v), 16)) : v;
}

}  // namespace

ft_status gemm_skinny_tn_avx512(const gemm_skinny_args& g) {
  const int64_t T = g.T, W = g.W, R = g.R, xes = g.x_f32 ? 4 : 2, yes = g.y_f32 ? 4 : 2;
  const int64_t blocks = (W + 15) / 16;
  // Y widened (and rounded) once: (T, 16) f32, zero past R; the accumulators of every
  // block between row chunks: (blocks, 16 r, 16 w).
  const PoolScratch yscratch((size_t)(T * RMAX * 4)), ascratch((size_t)(blocks * RMAX * 16 * 4));
  float* y = (float*)yscratch.get();
  float* accs = (float*)ascratch.get();
  if (!y || !accs) return FT_ERR_ALLOC;
#pragma omp parallel
  {
#pragma omp for schedule(static)
    for (int64_t t = 0; t < T; t++)
      _mm512_store_ps(y + t * RMAX, load16((const char*)g.y + t * R * yes, g.y_f32, g.round, mask16(R)));
    // Each thread owns a contiguous run of 16-column blocks and walks X in chunks of TC
    // rows: within a chunk block by block with its 16 accumulators in registers, fetching
    // the same columns TC rows ahead (X read column-block-wise straight from memory would
    // wait on every row: the hardware prefetchers do not follow a stride of W floats).
    const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t b0 = blocks * tid / nt, b1 = blocks * (tid + 1) / nt;
    for (int64_t t0 = 0; t0 < T; t0 += TC) {
      const int64_t t1 = T - t0 < TC ? T : t0 + TC;
      for (int64_t b = b0; b < b1; b++) {
        const int64_t w0 = b * 16;
        const __mmask16 m = mask16(W - w0);
        float* ab = accs + b * RMAX * 16;
        // All 16 accumulators run whatever R is (Y is zero past R, so the extra ones stay
        // zero and are never stored): indexed by constants only, they stay in registers (a
        // loop to a runtime R made GCC keep them on the stack, 5x slower).
        __m512 acc[RMAX];
#pragma GCC unroll 16
        for (int r = 0; r < RMAX; r++) acc[r] = t0 == 0 ? _mm512_setzero_ps() : _mm512_load_ps(ab + r * 16);
        const char* xp = (const char*)g.x + w0 * xes;
        for (int64_t t = t0; t < t1; t++) {
          if (t + TC < T) _mm_prefetch(xp + (t + TC) * W * xes, _MM_HINT_T0);
          const __m512 xv = load16(xp + t * W * xes, g.x_f32, g.round, m);
          const float* yt = y + t * RMAX;
#pragma GCC unroll 16
          for (int r = 0; r < RMAX; r++) acc[r] = _mm512_fmadd_ps(xv, _mm512_set1_ps(yt[r]), acc[r]);
        }
#pragma GCC unroll 16
        for (int r = 0; r < RMAX; r++) _mm512_store_ps(ab + r * 16, acc[r]);
      }
    }
    for (int64_t b = b0; b < b1; b++) {
      const int64_t w0 = b * 16;
      const __mmask16 m = mask16(W - w0);
      const float* ab = accs + b * RMAX * 16;
      if (!g.c_wr) {  // c (R, W): row r holds w
        for (int64_t r = 0; r < R; r++) {
          float* cr = g.c + r * W + w0;
          const __m512 a = _mm512_load_ps(ab + r * 16);
          _mm512_mask_storeu_ps(cr, m, g.accumulate ? _mm512_add_ps(_mm512_maskz_loadu_ps(m, cr), a) : a);
        }
      } else {  // c (W, R): a 16 x 16 transpose, then row w holds r
        __m512i tr[16];
        for (int r = 0; r < 16; r++) tr[r] = _mm512_load_si512(ab + r * 16);
        transpose16(tr);
        const __mmask16 mr = mask16(R);
        for (int64_t i = 0; i < 16 && w0 + i < W; i++) {
          float* cw = g.c + (w0 + i) * R;
          const __m512 v = _mm512_castsi512_ps(tr[i]);
          _mm512_mask_storeu_ps(cw, mr, g.accumulate ? _mm512_add_ps(_mm512_maskz_loadu_ps(mr, cw), v) : v);
        }
      }
    }
  }
  return FT_OK;
}
