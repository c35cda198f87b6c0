#include "stream_gate.h"

namespace braid::testing {
namespace {

__global__ void WaitForGate(const volatile int* open) {
  while (*open == 0) __nanosleep(1000);
}

}  // namespace

StreamGate::StreamGate() {
  void* host = nullptr;
  if (cudaHostAlloc(&host, sizeof(int), cudaHostAllocMapped) != cudaSuccess) return;
  host_ = static_cast<volatile int*>(host);
  *host_ = 1;
  void* device = nullptr;
  if (cudaHostGetDevicePointer(&device, host, 0) == cudaSuccess)
    device_ = static_cast<int*>(device);
}

StreamGate::~StreamGate() {
  Open();
  if (host_ != nullptr) cudaFreeHost(const_cast<int*>(host_));
}

cudaError_t StreamGate::Hold(cudaStream_t stream) {
  if (device_ == nullptr) return cudaErrorMemoryAllocation;
  *host_ = 0;
  WaitForGate<<<1, 1, 0, stream>>>(device_);
  return cudaGetLastError();
}

void StreamGate::Open() {
  if (host_ != nullptr) *host_ = 1;
}

}  // namespace braid::testing
