// How GPU tensors travel (BRAID_GPU_BACKEND): over NCCL, or host-staged over MPI
// through pinned host memory (which is also how several ranks share one GPU, since
// NCCL refuses two ranks of a communicator on one device). `kAuto` lets the ranks
// agree on NCCL when it is built and every local rank has a GPU of its own.
//
// A plain value; no CUDA here, so core/config can name it.
#pragma once

#include <string>

namespace braid {

enum class GpuBackend { kAuto, kNccl, kMpi };

inline const char* GpuBackendName(GpuBackend backend) {
  switch (backend) {
    case GpuBackend::kNccl:
      return "nccl";
    case GpuBackend::kMpi:
      return "mpi";
    case GpuBackend::kAuto:
      break;
  }
  return "auto";
}

// Parses "auto", "nccl" or "mpi" (lower case, as BRAID_GPU_BACKEND documents).
inline bool ParseGpuBackend(const std::string& text, GpuBackend* out) {
  for (GpuBackend b : {GpuBackend::kAuto, GpuBackend::kNccl, GpuBackend::kMpi}) {
    if (text == GpuBackendName(b)) {
      *out = b;
      return true;
    }
  }
  return false;
}

}  // namespace braid
