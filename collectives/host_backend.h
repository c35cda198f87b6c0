// Which backend carries host-memory collectives (BRAID_HOST_BACKEND): MPI, or the
// shared-memory data plane (collectives/shm/) when every rank runs on one host.
// `kAuto` takes shared memory when every rank of the communicator shares this
// host's memory and there is more than one rank, MPI otherwise.
//
// A plain value; no MPI or system headers here, so core/config can name it.
#pragma once

#include <string>

namespace braid {

enum class HostBackend { kAuto, kMpi, kShm };

inline const char* HostBackendName(HostBackend backend) {
  switch (backend) {
    case HostBackend::kMpi:
      return "mpi";
    case HostBackend::kShm:
      return "shm";
    case HostBackend::kAuto:
      break;
  }
  return "auto";
}

// Parses "auto", "mpi" or "shm" (lower case, as BRAID_HOST_BACKEND documents).
inline bool ParseHostBackend(const std::string& text, HostBackend* out) {
  for (HostBackend b : {HostBackend::kAuto, HostBackend::kMpi, HostBackend::kShm}) {
    if (text == HostBackendName(b)) {
      *out = b;
      return true;
    }
  }
  return false;
}

}  // namespace braid
