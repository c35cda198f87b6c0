// Recycles the host buffers the engine allocates for outputs it owns (allgather
// results). A large buffer freshly allocated for every call pays a page fault per
// page, which on virtual machines costs more than the collective itself; a
// buffer handed back by a freed handle is reused, already faulted in.
//
// Threading: Acquire and the release of a PooledBuffer are thread-safe; a buffer
// may outlive the pool (it is then simply freed).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

namespace braid {

class BufferPool;

// Move-only owner of one buffer from a BufferPool.
class PooledBuffer {
 public:
  PooledBuffer() = default;
  ~PooledBuffer();
  PooledBuffer(PooledBuffer&& other) noexcept;
  PooledBuffer& operator=(PooledBuffer&& other) noexcept;
  PooledBuffer(const PooledBuffer&) = delete;
  PooledBuffer& operator=(const PooledBuffer&) = delete;

  char* data() const { return data_; }
  int64_t capacity() const { return capacity_; }

 private:
  friend class BufferPool;
  void Release();

  char* data_ = nullptr;
  int64_t capacity_ = 0;
  std::weak_ptr<BufferPool> pool_;
};

class BufferPool : public std::enable_shared_from_this<BufferPool> {
 public:
  // Keeps at most `max_cached_bytes` of free buffers for reuse.
  static std::shared_ptr<BufferPool> Create(int64_t max_cached_bytes);
  ~BufferPool();

  // A buffer of at least `bytes` (contents undefined).
  PooledBuffer Acquire(int64_t bytes);
  int64_t cached_bytes() const;

 private:
  explicit BufferPool(int64_t max_cached_bytes) : max_cached_bytes_(max_cached_bytes) {}
  friend class PooledBuffer;
  void GiveBack(char* data, int64_t capacity);

  int64_t max_cached_bytes_;
  mutable std::mutex mutex_;
  std::multimap<int64_t, char*> free_;  // capacity -> buffer
  int64_t cached_bytes_ = 0;
};

}  // namespace braid
