// Core exports: CPU features, ISA and thread selection, and 64-byte aligned native
// memory handed to JavaScript as external ArrayBuffers that can be freed on demand
// (deterministic release: big buffers never wait for the garbage collector).
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_map>
#include "bind.h"
#include "pool.h"

namespace {

struct Block {
  void* p;
  size_t bytes;
  bool freed;
  int64_t accounted;  // the ArrayBuffer's byte length, which V8 counts as external memory
};

// V8 counts every ArrayBuffer's bytes as external memory and starts a full garbage
// collection each time that count grows by 64 MiB since the last one ("external memory
// pressure"): a training step allocating gigabytes of activations ran one every ~40 ms,
// each stopping the main thread and waking V8's helper threads on the cores the kernels
// use. ftune releases its blocks itself (release() below), so the collector has nothing
// to reclaim there: each block takes its bytes back out of V8's count when created and
// puts them back just before V8 subtracts them (on release()'s detach, or after the
// collector freed a buffer nobody released, in the finalizer), keeping the count balanced.
void adjust_v8_count(Napi::Env env, int64_t bytes) {
  int64_t ignored = 0;
  napi_adjust_external_memory(env, bytes, &ignored);
}

// Live blocks by data pointer, so release() can find the block of an ArrayBuffer. Both
// live on the heap and are never destroyed: V8 runs finalizers (which use them) while
// the process or a worker thread shuts down, possibly after static destructors.
std::mutex& g_mu = *new std::mutex();
std::unordered_map<void*, Block*>& g_blocks = *new std::unordered_map<void*, Block*>();
std::atomic<int64_t> g_live{0};
// The largest buffer Node allows (buffer.constants.MAX_LENGTH): set by the loader
// (setMaxAlloc); 4 GiB, Node 20's, until then.
std::atomic<uint64_t> g_max_bytes{(uint64_t)1 << 32};
std::atomic<int64_t> g_peak{0};

void note_alloc(int64_t bytes) {
  int64_t now = g_live.fetch_add(bytes) + bytes;
  int64_t peak = g_peak.load();
  while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {
  }
}

void free_block(Block* b) {
  if (!b->freed) {
    pool_put(b->p, b->bytes);
    g_live.fetch_sub((int64_t)b->bytes);
    b->freed = true;
  }
}

// Finalizer run by V8 when the ArrayBuffer is collected: frees memory not released yet.
void finalize(Napi::Env env, void*, Block* b) {
  if (!b->freed) adjust_v8_count(env, b->accounted);  // V8 has subtracted the bytes when it freed the buffer
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_blocks.find(b->p);
    if (it != g_blocks.end() && it->second == b) g_blocks.erase(it);
  }
  free_block(b);
  delete b;
}

// alloc(bytes, zero = true) -> ArrayBuffer (64-byte aligned; zero-filled unless zero is
// false, for outputs a kernel overwrites whole) | null when out of memory.
Napi::Value Alloc(const Napi::CallbackInfo& info) {
  int64_t bytes = int_arg(info, 0);
  if (bytes < 0) throw Napi::RangeError::New(info.Env(), "alloc: negative size");
  // Node refuses external buffers past its buffer limit (4 GiB in Node 20) and then runs
  // the finalizer twice (once in Node, once in node-addon-api): refuse before allocating.
  const uint64_t limit = g_max_bytes.load();
  if ((uint64_t)bytes > limit) {
    throw Napi::RangeError::New(info.Env(), "alloc: " + std::to_string(bytes) + " bytes exceeds the largest buffer Node allows (" +
                                                std::to_string(limit) + " bytes)");
  }
  bool zero = info.Length() < 2 || !info[1].IsBoolean() || info[1].As<Napi::Boolean>().Value();
  size_t rounded = ((size_t)bytes + 63) & ~(size_t)63;
  if (rounded == 0) rounded = 64;
  void* p = pool_get(rounded, zero);
  if (!p) return info.Env().Null();
  Block* b = new Block{p, rounded, false, bytes};
  {
    std::lock_guard<std::mutex> lock(g_mu);
    g_blocks[p] = b;
  }
  note_alloc((int64_t)rounded);
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(info.Env(), p, (size_t)bytes, finalize, b);
  adjust_v8_count(info.Env(), -bytes);
  return ab;
}

// release(buffer): frees the memory now and detaches the buffer (later access sees 0 bytes).
Napi::Value Release(const Napi::CallbackInfo& info) {
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  void* data = ab.Data();
  if (data == nullptr) return info.Env().Undefined();  // already released
  Block* b = nullptr;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_blocks.find(data);
    if (it == g_blocks.end()) return info.Env().Undefined();  // not ours: leave it to the GC
    b = it->second;
    g_blocks.erase(it);
  }
  adjust_v8_count(info.Env(), b->accounted);  // Detach subtracts it again
  ab.Detach();
  free_block(b);  // the finalizer still owns (and later deletes) the Block record
  return info.Env().Undefined();
}

Napi::Value CpuFeatures(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("avx2", ft_cpu_has_avx2());
  o.Set("avx512", ft_cpu_has_avx512());
  o.Set("avx512bf16", ft_cpu_has_avx512bf16());
  return o;
}

Napi::Value ActiveIsa(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), ft_active_isa()); }
Napi::Value SetIsa(const Napi::CallbackInfo& info) { return status_value(info, ft_set_isa((ft_isa)int_arg(info, 0))); }
Napi::Value Threads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), ft_threads()); }
Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  ft_set_threads((int)int_arg(info, 0));
  return info.Env().Undefined();
}
Napi::Value NativeBytes(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("live", (double)g_live.load());
  o.Set("peak", (double)g_peak.load());
  o.Set("cached", (double)pool_cached());
  return o;
}

// setMaxAlloc(bytes): the largest buffer alloc may create (Node's buffer limit).
Napi::Value SetMaxAlloc(const Napi::CallbackInfo& info) {
  const int64_t bytes = int_arg(info, 0);
  if (bytes <= 0) throw Napi::RangeError::New(info.Env(), "setMaxAlloc: the limit must be positive");
  g_max_bytes.store((uint64_t)bytes);
  return info.Env().Undefined();
}

// trimPool() -> bytes: frees the blocks the caching pool holds for reuse.
Napi::Value TrimPool(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), (double)pool_trim()); }

}  // namespace

void register_core(Napi::Env env, Napi::Object exports) {
  exports.Set("alloc", Napi::Function::New(env, Alloc));
  exports.Set("release", Napi::Function::New(env, Release));
  exports.Set("cpuFeatures", Napi::Function::New(env, CpuFeatures));
  exports.Set("activeIsa", Napi::Function::New(env, ActiveIsa));
  exports.Set("setIsa", Napi::Function::New(env, SetIsa));
  exports.Set("threads", Napi::Function::New(env, Threads));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("nativeBytes", Napi::Function::New(env, NativeBytes));
  exports.Set("trimPool", Napi::Function::New(env, TrimPool));
  exports.Set("setMaxAlloc", Napi::Function::New(env, SetMaxAlloc));
}
