// A buffer of the benchmark, allocated once at the largest size in its Memory
// (host or device) and freed with it.
#ifndef BRAID_BENCH_BUFFER_H_
#define BRAID_BENCH_BUFFER_H_

#include <cstddef>

#include "memory.h"

namespace bench {

class Buffer {
 public:
  Buffer(Memory& memory, size_t bytes)
      : memory_(memory), data_(static_cast<char*>(memory.Allocate(bytes))), bytes_(bytes) {}
  ~Buffer() { memory_.Free(data_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  char* data() const { return data_; }
  size_t bytes() const { return bytes_; }

 private:
  Memory& memory_;
  char* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace bench

#endif  // BRAID_BENCH_BUFFER_H_
