// --device: where the benchmark's buffers live (memory.h) and which raw path
// (raw_path.h) runs on them, chosen the same way on every rank.
//
// --device cpu: host memory and the mpi raw path. --device cuda (cuda_setup.cc):
// GPU local_rank % device count, where local_rank comes from
// MPI_Comm_split_type(MPI_COMM_TYPE_SHARED), a stream of the bench's own, and
//   nccl    when the engine uses NCCL: BRAID_GPU_BACKEND=nccl, or unset / auto with
//           every rank having its own GPU (local size <= device count on every
//           host), in a build with NCCL;
//   staged  otherwise (ranks share a GPU, or BRAID_GPU_BACKEND=mpi), as the engine
//           then stages through pinned host memory and MPI.
// Without CUDA in the build (no_cuda.cc), --device cuda fails with one line.
#ifndef BRAID_BENCH_DEVICE_H_
#define BRAID_BENCH_DEVICE_H_

#include <mpi.h>

#include <memory>
#include <string>

#include "memory.h"
#include "options.h"
#include "raw_path.h"
#include "report.h"

namespace bench {

struct DeviceSetup {
  std::unique_ptr<Memory> memory;
  std::unique_ptr<RawPath> raw;  // null in --kernels mode, which has none
  RunInfo info;
  int local_size = 1;    // ranks on this host
  int device_count = 0;  // GPUs this rank sees
};

// Sets up --device on every rank of `comm` (collective). Returns false on every rank
// when some rank cannot use it; the lowest such rank has printed one line saying why.
// A failure after every rank has its device (creating the NCCL communicator) aborts
// the job instead, so that no rank waits for a peer that gave up.
bool SetUpDevice(const Options& options, MPI_Comm comm, DeviceSetup* out);

// The two steps of --device cuda (cuda_setup.cc; no_cuda.cc says it is not built).
// Each returns "" or why it failed. Local: this rank's GPU, stream and memory.
std::string SetUpCudaLocal(MPI_Comm comm, DeviceSetup* out);
// Collective: the raw path kind (the same on every rank) and the raw path.
std::string SetUpCudaRaw(const Options& options, MPI_Comm comm, DeviceSetup* out);

}  // namespace bench

#endif  // BRAID_BENCH_DEVICE_H_
