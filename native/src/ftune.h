// ftune native kernels: shared declarations.
//
// Conventions (STYLE.md rules 3, 4, 6):
// - Kernels take raw pointers plus the element count of every buffer, and return an
//   ft_status. The dispatching entry point (no ISA suffix) checks every size against the
//   dims it is given before any memory is touched, then calls the variant for the active
//   ISA: <family>_<op>_<dtype>_{ref,avx2,avx512}.
// - Never abort, never throw across the boundary.
// - Every *_ref kernel is the scalar specification the fast variants are tested against.
#pragma once
#include <cstddef>
#include <cstdint>

enum ft_status : int32_t {
  FT_OK = 0,
  FT_ERR_SIZE = 1,   // a buffer is smaller than the dims require
  FT_ERR_ARG = 2,    // a dim or parameter is out of range
  FT_ERR_ISA = 3,    // the requested ISA is not supported by this CPU
  FT_ERR_ALLOC = 4,  // out of memory
};

enum ft_isa : int32_t { FT_ISA_SCALAR = 0, FT_ISA_AVX2 = 1, FT_ISA_AVX512 = 2 };

// isa.cc
ft_isa ft_active_isa();
bool ft_cpu_has_avx2();      // avx2 + fma + f16c
bool ft_cpu_has_avx512();    // avx512 f/bw/vl/dq
bool ft_cpu_has_avx512bf16();
ft_status ft_set_isa(ft_isa isa);
int ft_threads();
void ft_set_threads(int n);

// Size check helper for dispatchers: `have` elements available, `need` required.
inline bool ft_fits(size_t have, size_t need) { return have >= need; }

// bf16 <-> f32, round-to-nearest-even; NaN stays NaN (quiet). Shared by every ISA.
inline uint16_t ft_f32_to_bf16(float f) {
  uint32_t u;
  __builtin_memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}
inline float ft_bf16_to_f32(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}
