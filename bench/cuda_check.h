// Checking CUDA runtime calls in braid-bench. During setup a failure is returned
// as a message (device.h); once the benchmark runs, BENCH_CUDA prints the rank,
// the call, the place and CUDA's text, then aborts the job (MPI_Abort) so that no
// rank waits for one that stopped.
#ifndef BRAID_BENCH_CUDA_CHECK_H_
#define BRAID_BENCH_CUDA_CHECK_H_

#include <cuda_runtime_api.h>

#include <string>

namespace bench {

// Prints "braid-bench: rank R: <message> (<file>:<line>)" and aborts the job.
[[noreturn]] void DeviceFailure(const std::string& message, const char* file, int line);

// "<call> failed: <CUDA's error name>: <CUDA's text>"
std::string CudaMessage(const char* call, cudaError_t rc);

}  // namespace bench

#define BENCH_CUDA(call)                                                                  \
  do {                                                                                    \
    const cudaError_t bench_rc_ = (call);                                                 \
    if (bench_rc_ != cudaSuccess)                                                         \
      ::bench::DeviceFailure(::bench::CudaMessage(#call, bench_rc_), __FILE__, __LINE__); \
  } while (0)

// In a function returning std::string: returns the message of a failing call.
#define BENCH_CUDA_OR_RETURN(call)                             \
  do {                                                         \
    const cudaError_t bench_rc_ = (call);                      \
    if (bench_rc_ != cudaSuccess) {                            \
      (void)cudaGetLastError(); /* clear a non-sticky error */ \
      return ::bench::CudaMessage(#call, bench_rc_);           \
    }                                                          \
  } while (0)

#endif  // BRAID_BENCH_CUDA_CHECK_H_
