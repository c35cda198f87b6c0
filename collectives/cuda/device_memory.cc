#include "collectives/cuda/device_memory.h"

#include <cuda_runtime_api.h>

#include "collectives/cuda/cuda_check.h"

namespace braid {
namespace cuda {

Status DeviceBuffer::Create(int device, int64_t bytes, std::unique_ptr<DeviceBuffer>* out) {
  void* data = nullptr;
  if (bytes > 0) {
    DeviceGuard guard(device);
    BRAID_CHECK_CUDA(cudaMalloc(&data, static_cast<size_t>(bytes)));
  }
  out->reset(new DeviceBuffer(device, data, bytes));
  return Status::OK();
}

DeviceBuffer::~DeviceBuffer() {
  if (data_ == nullptr) return;
  DeviceGuard guard(device_);
  cudaFree(data_);
}

Status PinnedBuffer::Create(int64_t bytes, std::unique_ptr<PinnedBuffer>* out) {
  void* data = nullptr;
  if (bytes > 0) {
    BRAID_CHECK_CUDA(cudaHostAlloc(&data, static_cast<size_t>(bytes), cudaHostAllocPortable));
  }
  out->reset(new PinnedBuffer(data, bytes));
  return Status::OK();
}

PinnedBuffer::~PinnedBuffer() {
  if (data_ != nullptr) cudaFreeHost(data_);
}

DeviceGuard::DeviceGuard(int device) {
  if (cudaGetDevice(&previous_) != cudaSuccess) previous_ = -1;
  if (device != previous_) cudaSetDevice(device);
}

DeviceGuard::~DeviceGuard() {
  if (previous_ >= 0) cudaSetDevice(previous_);
}

int VisibleDeviceCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return count;
}

}  // namespace cuda
}  // namespace braid
