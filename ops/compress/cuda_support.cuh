// Helpers of the compress ops' CUDA files: the error model, the current device,
// launch sizes and stream-ordered scratch memory.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "collectives/cuda/kernel_launch.cuh"
#include "common/status.h"

namespace braid::compress::cuda {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 1024;  // grid-stride loops: enough to fill the device

inline int BlocksFor(int64_t n) {
  return braid::cuda::GridFor(n, kThreads, kMaxBlocks);
}

inline Status Check(cudaError_t err, const char* what) {
  return braid::cuda::CudaStatus(err, "compress kernels", what);
}

// Runs `f` with `device` current, restoring the caller's device afterwards.
template <typename F>
Status OnDevice(int device, F f) {
  return braid::cuda::OnDevice(device, "compress kernels", f);
}

// Copies `bytes` (any direction) on `stream` and waits for it, with `device` current.
inline Status CopyAndWait(int device, void* dst, const void* src, int64_t bytes, void* stream) {
  if (bytes == 0) return Status::OK();
  return OnDevice(device, [&] {
    auto st = static_cast<cudaStream_t>(stream);
    BRAID_RETURN_IF_ERROR(
        Check(cudaMemcpyAsync(dst, src, static_cast<size_t>(bytes), cudaMemcpyDefault, st),
              "cudaMemcpyAsync"));
    return Check(cudaStreamSynchronize(st), "cudaStreamSynchronize");
  });
}

// Scratch memory ordered on a stream: freed (cudaFreeAsync) after the work queued
// on the stream before the destructor, so kernels still running may use it.
// Threading: one owner; used on the thread that queues the stream's work.
class Scratch {
 public:
  explicit Scratch(cudaStream_t stream) : stream_(stream) {}
  ~Scratch() {
    if (data_ != nullptr) cudaFreeAsync(data_, stream_);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;

  Status Allocate(size_t bytes) {
    return Check(cudaMallocAsync(&data_, bytes > 0 ? bytes : 1, stream_), "cudaMallocAsync");
  }
  template <typename T>
  T* As(size_t byte_offset = 0) const {
    return reinterpret_cast<T*>(static_cast<char*>(data_) + byte_offset);
  }

 private:
  cudaStream_t stream_;
  void* data_ = nullptr;
};

}  // namespace braid::compress::cuda
