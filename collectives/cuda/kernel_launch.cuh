// What the CUDA files of braid's kernels share: grid sizes for grid-stride loops,
// CUDA errors as a Status, and running with a given device current.
//
// Threading: plain functions; OnDevice changes the calling thread's current device
// for the duration of the call only.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "common/status.h"

namespace braid::cuda {

// Blocks of `threads` for `n` elements, at least 1 and at most `max_blocks`.
inline int GridFor(int64_t n, int threads, int64_t max_blocks) {
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<int>(blocks < 1 ? 1 : (blocks < max_blocks ? blocks : max_blocks));
}

// OK, or a backend error "<who>: <what>: <CUDA's message>".
inline Status CudaStatus(cudaError_t err, const char* who, const char* what) {
  if (err == cudaSuccess) return Status::OK();
  return BackendError(std::string(who) + ": " + what + ": " + cudaGetErrorString(err));
}

// Runs `f` with `device` current, restoring the caller's device afterwards.
template <typename F>
Status OnDevice(int device, const char* who, F f) {
  int previous = 0;
  BRAID_RETURN_IF_ERROR(CudaStatus(cudaGetDevice(&previous), who, "cudaGetDevice"));
  if (previous != device)
    BRAID_RETURN_IF_ERROR(CudaStatus(cudaSetDevice(device), who, "cudaSetDevice"));
  Status st = f();
  if (previous != device) cudaSetDevice(previous);
  return st;
}

}  // namespace braid::cuda
