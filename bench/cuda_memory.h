// Device memory of one GPU and the stream the bench hands to braid: --device cuda.
// Upload and Download go through that stream and wait for it, so they are ordered
// after the engine's and the raw path's work on the stream.
#ifndef BRAID_BENCH_CUDA_MEMORY_H_
#define BRAID_BENCH_CUDA_MEMORY_H_

#include <cuda_runtime_api.h>

#include <memory>
#include <string>

#include "memory.h"

namespace bench {

class CudaMemory final : public Memory {
 public:
  // Makes `device` current on the calling thread and creates a non-blocking stream
  // on it. Returns "" or why it failed.
  static std::string Create(int device, std::unique_ptr<CudaMemory>* out);
  ~CudaMemory() override;
  CudaMemory(const CudaMemory&) = delete;
  CudaMemory& operator=(const CudaMemory&) = delete;

  int device() const override { return device_; }
  void* stream() const override { return stream_; }
  cudaStream_t cuda_stream() const { return stream_; }

  void* Allocate(size_t bytes) override;
  void Free(void* data) override;
  void Upload(void* data, const void* host, size_t bytes) override;
  void Download(void* host, const void* data, size_t bytes) override;
  void Synchronize() override;

 private:
  CudaMemory(int device, cudaStream_t stream) : device_(device), stream_(stream) {}
  int device_;
  cudaStream_t stream_;
};

}  // namespace bench

#endif  // BRAID_BENCH_CUDA_MEMORY_H_
