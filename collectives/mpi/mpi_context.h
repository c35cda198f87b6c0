// The MPI side of a transport: makes sure MPI is initialised, duplicates the
// caller's communicator into one for the control plane and one for the data plane
// (so that their messages can never match each other's or the application's), and
// works out where this process sits (WorldInfo).
//
// MPI can be initialised only once per process, while an engine may be created
// again after shutdown; so this class never finalises MPI. When braid itself
// initialised MPI, MPI_Finalize is registered with atexit instead.
//
// Threading: not thread-safe; create and destroy on one thread.
#pragma once

#include <mpi.h>

#include <memory>

#include "collectives/transport.h"
#include "common/status.h"

namespace braid {
namespace mpi {

class MpiContext {
 public:
  // `comm` points at the MPI_Comm to build on; null means MPI_COMM_WORLD.
  static Status Create(const void* comm, std::unique_ptr<MpiContext>* out);
  ~MpiContext();

  MpiContext(const MpiContext&) = delete;
  MpiContext& operator=(const MpiContext&) = delete;

  const WorldInfo& info() const { return info_; }
  MPI_Comm control_comm() const { return control_comm_; }
  MPI_Comm data_comm() const { return data_comm_; }

 private:
  MpiContext() = default;
  Status Init(MPI_Comm base);

  WorldInfo info_;
  MPI_Comm control_comm_ = MPI_COMM_NULL;
  MPI_Comm data_comm_ = MPI_COMM_NULL;
};

}  // namespace mpi
}  // namespace braid
