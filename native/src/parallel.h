// ft_parallel_for: a static-schedule OpenMP loop that runs on the calling thread, without
// entering a parallel region, when the work is too small to share. `#pragma omp parallel
// for if (false)` still builds a one-thread team (~0.4 us here), which a decoded token pays
// on every small op. The iterations are the same either way, so results do not depend on
// which path ran.
#pragma once
#include <cstdint>

template <class F>
inline void ft_parallel_for(int64_t n, bool parallel, F&& fn) {
  if (!parallel) {
    for (int64_t i = 0; i < n; i++) fn(i);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) fn(i);
}
