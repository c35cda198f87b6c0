// BRAID_CHECK_CUDA: the error model for CUDA runtime calls. A failing call becomes a
// Status(kBackendError) naming the file, line, call and cudaGetErrorString's text.
#pragma once

#include <cuda_runtime_api.h>

#include "common/status.h"

namespace braid {
namespace cuda {

Status CudaError(cudaError_t code, const char* call, const char* file, int line);

}  // namespace cuda
}  // namespace braid

#define BRAID_CHECK_CUDA(call)                                                    \
  do {                                                                            \
    cudaError_t _braid_cuda_rc = (call);                                          \
    if (_braid_cuda_rc != cudaSuccess)                                            \
      return ::braid::cuda::CudaError(_braid_cuda_rc, #call, __FILE__, __LINE__); \
  } while (0)
