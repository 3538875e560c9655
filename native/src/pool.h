// A caching pool for large native blocks (PyTorch's caching allocator, simplified):
// training allocates the same activation sizes every step, so freed blocks are kept by
// exact size and handed out again, instead of going back to malloc, which fragments its
// heap and keeps resident memory far above what is live. Small blocks use malloc.
#pragma once
#include <cstddef>

// A 64-byte aligned block of `bytes` (a multiple of 64), zero-filled when `zero`, or nullptr.
void* pool_get(size_t bytes, bool zero);
// Returns a block from pool_get; it is cached for reuse or freed past the cache limit.
void pool_put(void* p, size_t bytes);
// Frees every cached block; returns the bytes freed.
size_t pool_trim();
// Bytes cached now (not live, still resident).
size_t pool_cached();

// 64-byte aligned malloc that glibc reuses cleanly: aligned_alloc/memalign requests
// more than the block and splits it, so a freed block is never big enough for the next
// identical request and the heap grows without bound. Over-allocating by 64 bytes keeps
// every request the same size. Zero-filled when `zero`. Free with ft_aligned_free.
void* ft_aligned_alloc(size_t bytes, bool zero = false);
void ft_aligned_free(void* p);

// Scratch memory for one kernel call (pack buffers, decode rows), from the caching pool
// so that repeated calls with the same shapes reuse it instead of mapping fresh pages
// (glibc maps blocks of 256 KiB or more anew each time, and every first touch faults).
class PoolScratch {
 public:
  explicit PoolScratch(size_t bytes) : bytes_(bytes == 0 ? 64 : (bytes + 63) / 64 * 64), p_(pool_get(bytes_, false)) {}
  ~PoolScratch() {
    if (p_ != nullptr) pool_put(p_, bytes_);
  }
  PoolScratch(const PoolScratch&) = delete;
  PoolScratch& operator=(const PoolScratch&) = delete;
  char* get() const { return static_cast<char*>(p_); }

 private:
  size_t bytes_;
  void* p_;
};
