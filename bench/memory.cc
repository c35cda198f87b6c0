// Host memory: --device cpu.
#include <cstdlib>
#include <cstring>
#include <new>

#include "memory.h"

namespace bench {
namespace {

class HostMemory final : public Memory {
 public:
  int device() const override { return BRAID_DEVICE_CPU; }
  void* stream() const override { return nullptr; }

  void* Allocate(size_t bytes) override {
    void* p = nullptr;
    if (posix_memalign(&p, 4096, bytes == 0 ? 1 : bytes) != 0) throw std::bad_alloc();
    std::memset(p, 0, bytes);
    return p;
  }
  void Free(void* data) override { std::free(data); }
  void Upload(void* data, const void* host, size_t bytes) override {
    if (bytes > 0) std::memcpy(data, host, bytes);
  }
  void Download(void* host, const void* data, size_t bytes) override {
    if (bytes > 0) std::memcpy(host, data, bytes);
  }
  void Synchronize() override {}
};

}  // namespace

std::unique_ptr<Memory> MakeHostMemory() {
  return std::make_unique<HostMemory>();
}

}  // namespace bench
