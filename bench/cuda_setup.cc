// --device cuda: the GPU, stream and memory of this rank, then the raw path kind,
// agreed by every rank (device.h).
#include <cstdlib>
#include <string>

#include "cuda_check.h"
#include "cuda_memory.h"
#include "device.h"
#include "staged_raw.h"

namespace bench {
namespace {

// This rank's position among the ranks of its host.
void LocalRank(MPI_Comm comm, int* local_rank, int* local_size) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm local;
  MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &local);
  MPI_Comm_rank(local, local_rank);
  MPI_Comm_size(local, local_size);
  MPI_Comm_free(&local);
}

int MaxOverRanks(MPI_Comm comm, int local) {
  int global = local;
  MPI_Allreduce(&local, &global, 1, MPI_INT, MPI_MAX, comm);
  return global;
}

}  // namespace

std::string SetUpCudaLocal(MPI_Comm comm, DeviceSetup* out) {
  int rank = 0, local_rank = 0;
  MPI_Comm_rank(comm, &rank);
  LocalRank(comm, &local_rank, &out->local_size);
  int count = 0;
  const cudaError_t rc = cudaGetDeviceCount(&count);
  if (rc != cudaSuccess) {
    (void)cudaGetLastError();
    return std::string("no CUDA device visible (cudaGetDeviceCount: ") + cudaGetErrorString(rc) +
           ")";
  }
  if (count <= 0) return "no CUDA device visible (cudaGetDeviceCount found none)";
  out->device_count = count;
  const int device = local_rank % count;
  cudaDeviceProp prop{};
  BENCH_CUDA_OR_RETURN(cudaGetDeviceProperties(&prop, device));
  std::unique_ptr<CudaMemory> memory;
  const std::string error = CudaMemory::Create(device, &memory);
  if (!error.empty()) return "GPU " + std::to_string(device) + ": " + error;
  out->memory = std::move(memory);
  out->info.device = "cuda";
  out->info.device_detail = "rank " + std::to_string(rank) + " on GPU " + std::to_string(device) +
                            " of " + std::to_string(count) + " (" + prop.name + "), " +
                            std::to_string(out->local_size) + " rank(s) on its host";
  return "";
}

// The engine's choice (BRAID_GPU_BACKEND, docs/configuration.md): nccl or mpi when
// set; auto: nccl when built and every rank's host has a GPU per rank, else mpi
// (host-staged). The raw path follows it.
std::string SetUpCudaRaw(const Options& options, MPI_Comm comm, DeviceSetup* out) {
  const char* env = std::getenv("BRAID_GPU_BACKEND");
  const std::string backend = env != nullptr && *env != '\0' ? env : "auto";
  const int forced_mpi = MaxOverRanks(comm, backend == "mpi");
  const int forced_nccl = MaxOverRanks(comm, backend == "nccl");
  const int shared = MaxOverRanks(comm, out->local_size > out->device_count);
  auto& memory = static_cast<CudaMemory&>(*out->memory);
  if (!forced_mpi && (forced_nccl || !shared) && NcclRawBuilt()) {
    out->info.raw_reason = forced_nccl ? "BRAID_GPU_BACKEND=nccl"
                                       : "every rank has its own GPU and the engine uses NCCL";
    return MakeNcclRaw(comm, *options.dtype, options.op, memory, &out->raw);
  }
  out->info.raw_reason = forced_mpi ? "BRAID_GPU_BACKEND=mpi"
                         : shared   ? "ranks share a GPU (more ranks than GPUs on a host)"
                                    : "this braid-bench was built without NCCL";
  out->info.raw_reason += ": the engine stages through pinned host memory and MPI";
  out->raw = MakeStagedRaw(comm, *options.dtype, options.op, memory);
  return "";
}

}  // namespace bench
