#include "collectives/cuda/cuda_check.h"

#include <string>

namespace braid {
namespace cuda {

Status CudaError(cudaError_t code, const char* call, const char* file, int line) {
  // Clear the (non-sticky) error so that the next call does not report it again.
  (void)cudaGetLastError();
  return Status(StatusCode::kBackendError,
                std::string(call) + " failed at " + file + ":" + std::to_string(line) + ": " +
                    cudaGetErrorName(code) + " (" + cudaGetErrorString(code) + ")");
}

}  // namespace cuda
}  // namespace braid
