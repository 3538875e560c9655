// Seeded normal fill (rand.h): the scalar kernel and its checked dispatcher. There is no
// SIMD variant: the fill runs once per synthetic tensor and is bound by logf/sincosf.
#include "rand.h"
#include <cmath>
#include "grad.h"

namespace {

// Top 53 bits of a hash as a double in [0, 1).
inline double unit(uint64_t z) { return (double)(z >> 11) * (1.0 / 9007199254740992.0); }

// Pair p -> two independent N(0, 1) floats (Box-Muller; u1 in (0, 1] so log is finite).
inline void normal_pair(uint64_t seed, int64_t p, float* a, float* b) {
  const double u1 = 1.0 - unit(grad_splitmix64(seed, 2 * (uint64_t)p));
  const double u2 = unit(grad_splitmix64(seed, 2 * (uint64_t)p + 1));
  const float r = std::sqrt(-2.0f * std::log((float)u1));
  const float t = (float)(6.283185307179586 * u2);
  *a = r * std::cos(t);
  *b = r * std::sin(t);
}

}  // namespace

// out (n) <- std * N(0, 1); static schedule over pairs (each pair owns its two outputs).
void rand_normal_f32_ref(float* out, int64_t n, uint64_t seed, float std) {
  const int64_t pairs = n / 2;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < pairs; p++) {
    float a, b;
    normal_pair(seed, p, &a, &b);
    out[2 * p] = a * std;
    out[2 * p + 1] = b * std;
  }
  if (n % 2 == 1) {
    float a, b;
    normal_pair(seed, pairs, &a, &b);
    out[n - 1] = a * std;
  }
}

ft_status rand_normal_f32(float* out, size_t out_n, int64_t n, uint64_t seed, float std) {
  if (n < 0 || !std::isfinite(std) || std < 0) return FT_ERR_ARG;
  if (!ft_fits(out_n, (size_t)n)) return FT_ERR_SIZE;
  rand_normal_f32_ref(out, n, seed, std);
  return FT_OK;
}
