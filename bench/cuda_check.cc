#include "cuda_check.h"

#include <mpi.h>

#include <cstdio>
#include <cstdlib>

namespace bench {

void DeviceFailure(const std::string& message, const char* file, int line) {
  int rank = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  std::fprintf(stderr, "braid-bench: rank %d: %s (%s:%d)\n", rank, message.c_str(), file, line);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 3);
  std::abort();
}

std::string CudaMessage(const char* call, cudaError_t rc) {
  return std::string(call) + " failed: " + cudaGetErrorName(rc) + ": " + cudaGetErrorString(rc);
}

}  // namespace bench
