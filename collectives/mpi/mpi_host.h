// Everything the transport needs from MPI, behind a header that does not include
// mpi.h (only collectives/mpi sees MPI): the communicators, where this process
// sits, the control channel and the host backend (MPI, or shared memory when
// BRAID_HOST_BACKEND selects it: collectives/shm/shm_setup.h).
//
// Threading: not thread-safe; see ControlChannel and Backend for their contracts.
#pragma once

#include <memory>

#include "collectives/backend.h"
#include "collectives/control_channel.h"
#include "collectives/transport.h"
#include "common/status.h"

namespace braid {
namespace mpi {

class MpiHost {
 public:
  // Collective over the communicator named by options.mpi_comm (or MPI_COMM_WORLD).
  static Status Create(const TransportOptions& options, std::unique_ptr<MpiHost>* out);
  virtual ~MpiHost() = default;

  virtual const WorldInfo& info() const = 0;
  virtual ControlChannel* control() = 0;
  virtual Backend* backend() = 0;
  // The host memory the host backends keep (the MPI ring's scratch, which stays
  // when shm carries the collectives).
  virtual std::vector<HostRegion> OwnedHostMemory() const = 0;
  // MPI_Abort on the data communicator (the whole job ends), from any thread.
  [[noreturn]] virtual void Abort(int exit_code) = 0;
};

}  // namespace mpi
}  // namespace braid
