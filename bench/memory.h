// Where the benchmark's buffers live: host memory (--device cpu) or one GPU with the
// stream the bench hands to braid (--device cuda, cuda_memory.cc). The sweeps are
// written once against this interface.
//
// Every call is complete when it returns (a device implementation synchronises its
// stream), so the timed loops measure whole operations. A CUDA failure aborts the
// job with a message naming the call (cuda_check.h).
#ifndef BRAID_BENCH_MEMORY_H_
#define BRAID_BENCH_MEMORY_H_

#include <cstddef>
#include <memory>

#include "braid/braid.h"

namespace bench {

class Memory {
 public:
  virtual ~Memory() = default;

  // BRAID_DEVICE_CPU or a CUDA ordinal: braid_tensor_t.device.
  virtual int device() const = 0;
  // The cudaStream_t given to braid as braid_tensor_t.stream; nullptr on the host.
  virtual void* stream() const = 0;

  // `bytes` of zeros; host memory is page aligned and written once, so that no page
  // fault lands inside a timed loop.
  virtual void* Allocate(size_t bytes) = 0;
  virtual void Free(void* data) = 0;
  // Copies between this memory (`data`) and host memory (`host`).
  virtual void Upload(void* data, const void* host, size_t bytes) = 0;
  virtual void Download(void* host, const void* data, size_t bytes) = 0;
  // Waits until the work queued on stream() is done (after an engine operation).
  virtual void Synchronize() = 0;

  bool on_host() const { return device() == BRAID_DEVICE_CPU; }
};

std::unique_ptr<Memory> MakeHostMemory();

}  // namespace bench

#endif  // BRAID_BENCH_MEMORY_H_
