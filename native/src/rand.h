// Seeded random fills for synthetic weights (bench/7b-qlora.ts builds a 7B-parameter model
// from them): counter-based, so every element depends only on (seed, index) and the result
// is the same for any thread count.
#pragma once
#include "ftune.h"

// out (n) = N(0, std^2) samples: Box-Muller over pairs of splitmix64 counter hashes
// (grad_splitmix64 of grad.h), element 2p and 2p+1 from pair p. n may be odd.
ft_status rand_normal_f32(float* out, size_t out_n, int64_t n, uint64_t seed, float std);
void rand_normal_f32_ref(float* out, int64_t n, uint64_t seed, float std);
