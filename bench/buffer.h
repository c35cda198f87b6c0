// A page-aligned host buffer, written once at allocation so that no page fault
// lands inside a timed loop.
#ifndef BRAID_BENCH_BUFFER_H_
#define BRAID_BENCH_BUFFER_H_

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

namespace bench {

class Buffer {
 public:
  explicit Buffer(size_t bytes) : bytes_(bytes) {
    void* p = nullptr;
    if (posix_memalign(&p, 4096, bytes == 0 ? 1 : bytes) != 0) throw std::bad_alloc();
    std::memset(p, 0, bytes);
    data_ = static_cast<char*>(p);
  }
  ~Buffer() { std::free(data_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  char* data() const { return data_; }
  size_t bytes() const { return bytes_; }

 private:
  char* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace bench

#endif  // BRAID_BENCH_BUFFER_H_
