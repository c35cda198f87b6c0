#include "device.h"

#include <climits>
#include <cstdio>

namespace bench {
namespace {

// True on every rank when `error` is empty on every rank; otherwise the lowest
// failing rank prints it.
bool Agree(MPI_Comm comm, const std::string& error) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  int mine = error.empty() ? INT_MAX : rank, first = INT_MAX;
  MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm);
  if (first == rank) {
    std::fprintf(stderr, "braid-bench: error: --device cuda: rank %d: %s\n", rank, error.c_str());
    std::fflush(stderr);
  }
  return first == INT_MAX;
}

}  // namespace

bool SetUpDevice(const Options& options, MPI_Comm comm, DeviceSetup* out) {
  if (options.device == Device::kCpu) {
    out->memory = MakeHostMemory();
    out->raw = MakeMpiRaw(comm, *options.dtype, options.op);
    out->info.raw_detail = out->raw->Describe(options.collective);
    return true;
  }
  if (!Agree(comm, SetUpCudaLocal(comm, out))) return false;
  if (options.kernels) return true;
  if (!Agree(comm, SetUpCudaRaw(options, comm, out))) return false;
  out->info.raw_kind = out->raw->kind();
  out->info.raw_detail = out->raw->Describe(options.collective);
  if (options.collective == Collective::kNeighbor)
    out->info.raw_detail = "n/a (no raw neighbour path on device buffers)";
  return true;
}

}  // namespace bench
