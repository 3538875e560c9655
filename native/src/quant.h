// Quant family: bitsandbytes 4-bit (NF4/FP4) blockwise quantization, the 8-bit dynamic
// map of double quantization, and the fused 4-bit linear layer
// (formats-and-features.md section 2.4; TS reference src/quant/blockwise.ts).
//
// A 4-bit weight W (N,K) is its row-major elements flattened: element i = n*K + k has a
// code nibble (element 2j in the high nibble of byte j) and belongs to absmax block
// i / blocksize, so a block can span rows. Its value is map[code] * absmax(block) in f32,
// where absmax(block) is stored as f32 or, double-quantized, decoded on the fly as
// nest_map[qabsmax[b]] * nest_absmax[b / nblocksize] + offset (both roundings f32).
//
// Determinism: quantization is per block (any thread count gives the same bytes); the
// products split N (or M) across threads and never K.
#pragma once
#include "ftune.h"

enum q4_type : int32_t { Q4_NF4 = 0, Q4_FP4 = 1 };

// Blocksizes bitsandbytes accepts: powers of two in [32, 4096].
inline bool q4_valid_blocksize(int64_t bs) { return bs >= 32 && bs <= 4096 && (bs & (bs - 1)) == 0; }

struct q4_weight {
  const uint8_t* codes; size_t ncodes;      // (ceil(N*K/2)) packed codes
  const float* map; size_t nmap;            // (16) code values
  const float* absmax; size_t nabsmax;      // (nBlocks) f32 absmax, or null when nested
  const uint8_t* qabsmax; size_t nqabsmax;  // (nBlocks) 8-bit codes of absmax - offset (nested)
  const float* nest_absmax; size_t nnest_absmax;  // (ceil(nBlocks/nblocksize)) nested scales
  const float* nest_map; size_t nnest_map;        // (256) the dynamic map
  float offset;                             // mean absmax, added back
  int64_t N, K, blocksize, nblocksize;
};

// How a decoded run is written: f32 values, f32 values rounded to bf16 (round to nearest
// even, the values vdpbf16ps-free paths multiply), or bf16 bit patterns.
enum q4_out : int32_t { Q4_OUT_F32 = 0, Q4_OUT_F32_BF16 = 1, Q4_OUT_BF16 = 2 };

// Decodes elements [i0, i0+len) of w into out (len values of the q4_out kind).
typedef void (*q4_decode_fn)(const q4_weight& w, int64_t i0, int64_t len, int32_t kind, void* out);

// ---- dispatchers (quant_dispatch.cc): check every size, then run the active ISA's variant.
// w (n) f32 -> codes (ceil(n/2)), absmax (ceil(n/blocksize))
ft_status q4_quantize_f32(const float* w, size_t nw, uint8_t* codes, size_t ncodes, float* absmax, size_t nabsmax,
                          int64_t n, int64_t blocksize, int32_t type);
// w (n) bf16 bit patterns (decoded exactly) -> the same
ft_status q4_quantize_bf16(const uint16_t* w, size_t nw, uint8_t* codes, size_t ncodes, float* absmax, size_t nabsmax,
                           int64_t n, int64_t blocksize, int32_t type);
// x (n) f32, map (256) sorted -> codes (n) u8, absmax (ceil(n/blocksize)): nearest map entry
ft_status q8_quantize_f32(const float* x, size_t nx, const float* map, size_t nmap, uint8_t* codes, size_t ncodes,
                          float* absmax, size_t nabsmax, int64_t n, int64_t blocksize);
// W -> out (N*K) f32
ft_status q4_dequantize(const q4_weight& w, float* out, size_t nout);
// x (M,K) f32 (bf16: bf16 bit patterns, W rounded to bf16), bias (N)|null -> y (M,N) = x W^T + bias
ft_status q4_linear(const q4_weight& w, const void* x, size_t nx, bool bf16, const float* bias, size_t nbias, float* y,
                    size_t ny, int64_t M);
// dy (M,N) f32 (bf16: bit patterns) -> dx (M,K) = dy W
ft_status q4_linear_bwd(const q4_weight& w, const void* dy, size_t ndy, bool bf16, float* dx, size_t ndx, int64_t M);

// The decoder of the active ISA (quant_dispatch.cc).
q4_decode_fn q4_active_decode();
// Checks every array of w against its dims (FT_OK, FT_ERR_ARG or FT_ERR_SIZE).
ft_status q4_check(const q4_weight& w);

// ---- shared pieces (quant_ref.cc).
extern const float q4_nf4_map[16];
extern const float q4_fp4_map[16];
// absmax of blocks [b0, b0+nb) (f32 or decoded from the nested form) -> out (nb).
void q4_absmax_run(const q4_weight& w, int64_t b0, int64_t nb, float* out);

// Walks the blocks of a decoded run, fetching their absmax Q4_ABSMAX_RUN at a time (one
// division per run, not per block).
constexpr int64_t Q4_ABSMAX_RUN = 64;
struct q4_block_walk {
  int64_t b, first, count;
  float am[Q4_ABSMAX_RUN];
};
// Scale of block walk.b, refilling the cache when walk.b leaves it; last = the run's last block.
inline float q4_walk_scale(const q4_weight& w, q4_block_walk& k, int64_t last) {
  if (k.b - k.first >= k.count) {
    k.first = k.b;
    k.count = last - k.b + 1 < Q4_ABSMAX_RUN ? last - k.b + 1 : Q4_ABSMAX_RUN;
    q4_absmax_run(w, k.first, k.count, k.am);
  }
  return k.am[k.b - k.first];
}
// 1 / max(absmax, 1e-38) in f32: an all-zero block scales to 0 (bitsandbytes' default op).
float q4_reciprocal(float absmax);
// f32 -> the f32 value of its bf16 rounding (round to nearest even).
inline float q4_round_bf16(float v) { return ft_bf16_to_f32(ft_f32_to_bf16(v)); }

// Thresholds of the nearest-code search: adjacent midpoints (a + b) * 0.5f of the sorted
// values; a value takes the number of thresholds it is strictly greater than (ties go to
// the lower code, kernels.cu dQuantizeNF4 / dQuantizeFP4).
struct q4_thresholds {
  float nf4[15];
  float fp4[7];          // of the sorted FP4 magnitudes
  int32_t fp4_code[8];   // code of each sorted magnitude
  int32_t fp4_code_x2[16];  // fp4_code twice (a full zmm for vpermd)
};
const q4_thresholds& q4_thresholds_get();

// Code of one scaled value s (already clamped to [-1, 1]).
inline uint8_t q4_code(float s, int32_t type, const q4_thresholds& t) {
  if (type == Q4_NF4) {
    int c = 0;
    for (int i = 0; i < 15; i++) c += s > t.nf4[i];
    return (uint8_t)c;
  }
  const int sign = s < 0.0f ? 8 : 0;
  const float m = s < 0.0f ? -s : s;
  int c = 0;
  for (int i = 0; i < 7; i++) c += m > t.fp4[i];
  return (uint8_t)(sign + t.fp4_code[c]);
}

// Packs the codes of x[i..len) (i even) scaled by r into out[i/2..]: the scalar tail of
// every ISA's block kernel; an odd len pads with the code of 0.0 (bitsandbytes pads the
// scaled values with 0 before packing).
void q4_quant_pairs(const float* x, int64_t i, int64_t len, float r, int32_t type, uint8_t* out);

// Writes element i - i0 of a decoded run from the block's 16-entry table lut.
inline void q4_put(const uint8_t* codes, int64_t i, int64_t i0, const float* lut, int32_t kind, void* out) {
  const uint8_t byte = codes[i >> 1];
  const float v = lut[(i & 1) ? byte & 15 : byte >> 4];
  if (kind == Q4_OUT_BF16) ((uint16_t*)out)[i - i0] = ft_f32_to_bf16(v);
  else ((float*)out)[i - i0] = v;
}

// ---- variants. One block of <= blocksize elements starting at an even element:
// x (len) f32 -> out (ceil(len/2)) packed codes; returns absmax.
float q4_quant_block_ref(const float* x, int64_t len, int32_t type, uint8_t* out);
float q4_quant_block_avx2(const float* x, int64_t len, int32_t type, uint8_t* out);
float q4_quant_block_avx512(const float* x, int64_t len, int32_t type, uint8_t* out);
// dy (M,N) f32 or bf16 words -> dx (M,K) = dy W, sums in N order (the scalar ISA's path).
ft_status q4_linear_bwd_ref(const q4_weight& w, const void* dy, bool bf16, float* dx, int64_t M);
// Elements [i0, i0+len) of w -> out (len values of the q4_out kind).
void q4_decode_ref(const q4_weight& w, int64_t i0, int64_t len, int32_t kind, void* out);
void q4_decode_avx2(const q4_weight& w, int64_t i0, int64_t len, int32_t kind, void* out);
void q4_decode_avx512(const q4_weight& w, int64_t i0, int64_t len, int32_t kind, void* out);
// Fused GEMV tiles (decode in registers): x (mb<=4,K), W rows [n0, n0+nr<=4) -> out (mb,4); K % 32 == 0.
// bf16: x bf16 patterns, W rounded to bf16, vdpbf16ps (needs avx512_bf16).
void q4_gemv_bf16_avx512(const q4_weight& w, int64_t n0, int nr, const void* x, int mb, float* out);
void q4_gemv_f32_avx512(const q4_weight& w, int64_t n0, int nr, const void* x, int mb, float* out);
