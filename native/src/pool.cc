// Caching pool for large blocks (see pool.h). Blocks of POOL_MIN bytes or more come from
// mmap-backed malloc (the mmap threshold is fixed so glibc never moves them into its
// heap) and, once returned, wait in a per-size free list. The cache is capped at the
// largest number of bytes ever live at once, so resident memory stays within about
// twice the peak working set and, in steady-state training, near the peak itself.
#include "pool.h"
#include <malloc.h>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace {

constexpr size_t POOL_MIN = 256 * 1024;
// Free memory glibc keeps at the top of its heap instead of returning it. At the default
// (128 KiB) every free of a block near the top gave the pages back, and the next malloc
// faulted them in again: a medium LoRA step took ~2,700 page faults, most in the skinny
// LoRA-gradient products' 48-128 KiB scratch; with 32 MiB kept, ~250 (sys time per step
// -10-20 ms of CPU across the two threads).
constexpr size_t HEAP_KEEP = 32 << 20;

struct Pool {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<void*>> free;
  size_t cached = 0;
  size_t live = 0;
  size_t peak_live = 0;
  Pool() {
    mallopt(M_MMAP_THRESHOLD, (int)POOL_MIN);
    mallopt(M_TRIM_THRESHOLD, (int)HEAP_KEEP);
  }
};

// Never destroyed: N-API finalizers may return blocks while the process (or a worker
// thread's environment) shuts down, after static destructors have run.
Pool& pool() {
  static Pool* p = new Pool();
  return *p;
}

}  // namespace

void* ft_aligned_alloc(size_t bytes, bool zero) {
  // calloc skips clearing fresh pages the kernel hands out zeroed (every block of
  // POOL_MIN bytes or more is mmapped), so zeroed blocks stay non-resident until used.
  void* raw = zero ? std::calloc(bytes + 64, 1) : std::malloc(bytes + 64);
  if (raw == nullptr) return nullptr;
  // malloc aligns to 16, so there are at least 16 bytes before the aligned address to
  // remember the raw pointer in.
  uintptr_t aligned = ((uintptr_t)raw + 64) & ~(uintptr_t)63;
  ((void**)aligned)[-1] = raw;
  return (void*)aligned;
}

void ft_aligned_free(void* p) {
  if (p != nullptr) std::free(((void**)p)[-1]);
}

void* pool_get(size_t bytes, bool zero) {
  if (bytes < POOL_MIN) return ft_aligned_alloc(bytes, zero);
  Pool& p = pool();
  {
    std::lock_guard<std::mutex> lock(p.mu);
    p.live += bytes;
    if (p.live > p.peak_live) p.peak_live = p.live;
    auto it = p.free.find(bytes);
    if (it != p.free.end() && !it->second.empty()) {
      void* b = it->second.back();
      it->second.pop_back();
      p.cached -= bytes;
      if (zero) std::memset(b, 0, bytes);
      return b;
    }
  }
  void* b = ft_aligned_alloc(bytes, zero);
  if (b == nullptr) {
    // Out of memory: give the cache back to the system and try once more.
    pool_trim();
    b = ft_aligned_alloc(bytes, zero);
    if (b == nullptr) {
      std::lock_guard<std::mutex> lock(p.mu);
      p.live -= bytes;
    }
  }
  return b;
}

void pool_put(void* b, size_t bytes) {
  if (bytes < POOL_MIN) {
    ft_aligned_free(b);
    return;
  }
  Pool& p = pool();
  {
    std::lock_guard<std::mutex> lock(p.mu);
    p.live -= bytes;
    if (p.cached + bytes <= p.peak_live) {
      p.free[bytes].push_back(b);
      p.cached += bytes;
      return;
    }
  }
  ft_aligned_free(b);
}

size_t pool_trim() {
  Pool& p = pool();
  std::vector<void*> blocks;
  size_t freed = 0;
  {
    std::lock_guard<std::mutex> lock(p.mu);
    for (auto& [size, list] : p.free) {
      blocks.insert(blocks.end(), list.begin(), list.end());
      freed += size * list.size();
    }
    p.free.clear();
    p.cached = 0;
  }
  for (void* b : blocks) ft_aligned_free(b);
  return freed;
}

size_t pool_cached() {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mu);
  return p.cached;
}
