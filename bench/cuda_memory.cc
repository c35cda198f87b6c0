#include "cuda_memory.h"

#include <cstdio>

#include "cuda_check.h"

namespace bench {

std::string CudaMemory::Create(int device, std::unique_ptr<CudaMemory>* out) {
  BENCH_CUDA_OR_RETURN(cudaSetDevice(device));
  cudaStream_t stream = nullptr;
  BENCH_CUDA_OR_RETURN(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  out->reset(new CudaMemory(device, stream));
  return "";
}

CudaMemory::~CudaMemory() {
  const cudaError_t rc = cudaStreamDestroy(stream_);
  if (rc != cudaSuccess) {
    std::fprintf(stderr, "braid-bench: warning: %s\n",
                 CudaMessage("cudaStreamDestroy", rc).c_str());
  }
}

// cudaMalloc'd (256-byte aligned) and zeroed. The device is made current again in
// case a call into braid changed it on this thread.
void* CudaMemory::Allocate(size_t bytes) {
  void* data = nullptr;
  BENCH_CUDA(cudaSetDevice(device_));
  BENCH_CUDA(cudaMalloc(&data, bytes == 0 ? 1 : bytes));
  BENCH_CUDA(cudaMemsetAsync(data, 0, bytes, stream_));
  Synchronize();
  return data;
}

// Called from destructors: a failure is reported, not fatal.
void CudaMemory::Free(void* data) {
  if (data == nullptr) return;
  const cudaError_t rc = cudaFree(data);
  if (rc != cudaSuccess) {
    std::fprintf(stderr, "braid-bench: warning: %s\n", CudaMessage("cudaFree", rc).c_str());
  }
}

void CudaMemory::Upload(void* data, const void* host, size_t bytes) {
  if (bytes == 0) return;
  BENCH_CUDA(cudaMemcpyAsync(data, host, bytes, cudaMemcpyHostToDevice, stream_));
  Synchronize();
}

void CudaMemory::Download(void* host, const void* data, size_t bytes) {
  if (bytes == 0) return;
  BENCH_CUDA(cudaMemcpyAsync(host, data, bytes, cudaMemcpyDeviceToHost, stream_));
  Synchronize();
}

void CudaMemory::Synchronize() {
  BENCH_CUDA(cudaStreamSynchronize(stream_));
}

}  // namespace bench
