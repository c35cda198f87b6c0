#include "core/buffer_pool.h"

#include <cstdlib>
#include <new>

namespace braid {
namespace {

// Sizes are rounded up to a power of two (at least 4 KiB) so that buffers of
// slightly different sizes share entries.
int64_t SizeClass(int64_t bytes) {
  int64_t c = 4096;
  while (c < bytes) c <<= 1;
  return c;
}

char* Allocate(int64_t bytes) {
  void* p = nullptr;
  if (posix_memalign(&p, 4096, static_cast<size_t>(bytes)) != 0) throw std::bad_alloc();
  return static_cast<char*>(p);
}

}  // namespace

PooledBuffer::~PooledBuffer() {
  Release();
}

PooledBuffer::PooledBuffer(PooledBuffer&& other) noexcept {
  *this = std::move(other);
}

PooledBuffer& PooledBuffer::operator=(PooledBuffer&& other) noexcept {
  if (this != &other) {
    Release();
    data_ = other.data_;
    capacity_ = other.capacity_;
    pool_ = std::move(other.pool_);
    other.data_ = nullptr;
    other.capacity_ = 0;
  }
  return *this;
}

void PooledBuffer::Release() {
  if (data_ == nullptr) return;
  if (auto pool = pool_.lock()) {
    pool->GiveBack(data_, capacity_);
  } else {
    std::free(data_);
  }
  data_ = nullptr;
  capacity_ = 0;
}

std::shared_ptr<BufferPool> BufferPool::Create(int64_t max_cached_bytes) {
  return std::shared_ptr<BufferPool>(new BufferPool(max_cached_bytes));
}

BufferPool::~BufferPool() {
  for (auto& kv : free_) std::free(kv.second);
}

PooledBuffer BufferPool::Acquire(int64_t bytes) {
  PooledBuffer out;
  out.pool_ = weak_from_this();
  int64_t size_class = SizeClass(bytes);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_.find(size_class);
    if (it != free_.end()) {
      out.data_ = it->second;
      out.capacity_ = it->first;
      cached_bytes_ -= it->first;
      free_.erase(it);
      return out;
    }
  }
  out.data_ = Allocate(size_class);
  out.capacity_ = size_class;
  return out;
}

void BufferPool::GiveBack(char* data, int64_t capacity) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (cached_bytes_ + capacity <= max_cached_bytes_) {
      free_.emplace(capacity, data);
      cached_bytes_ += capacity;
      return;
    }
  }
  std::free(data);
}

int64_t BufferPool::cached_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cached_bytes_;
}

}  // namespace braid
