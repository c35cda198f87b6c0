// A gate that holds a CUDA stream: a one-thread kernel that waits until the host
// opens it, so work queued behind it on that stream cannot start before then.
// Nothing may synchronise the whole device while a gate holds a stream (cudaFree,
// cudaDeviceSynchronize): that would wait for the gate.
#pragma once

#include <cuda_runtime_api.h>

namespace braid::testing {

class StreamGate {
 public:
  StreamGate();
  ~StreamGate();
  StreamGate(const StreamGate&) = delete;
  StreamGate& operator=(const StreamGate&) = delete;

  // Closes the gate and queues the waiting kernel on `stream`.
  cudaError_t Hold(cudaStream_t stream);
  void Open();

 private:
  volatile int* host_ = nullptr;  // mapped pinned memory
  int* device_ = nullptr;
};

}  // namespace braid::testing
