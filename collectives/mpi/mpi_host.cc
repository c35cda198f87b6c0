#include "collectives/mpi/mpi_host.h"

#include <cstdlib>

#include "collectives/mpi/mpi_backend.h"
#include "collectives/mpi/mpi_context.h"
#include "collectives/mpi/mpi_control.h"
#include "collectives/shm/shm_setup.h"

namespace braid {
namespace mpi {
namespace {

class MpiHostImpl : public MpiHost {
 public:
  const WorldInfo& info() const override { return context_->info(); }
  ControlChannel* control() override { return control_.get(); }
  // The shared-memory backend when it was chosen (BRAID_HOST_BACKEND), else MPI.
  Backend* backend() override { return shm_ ? shm_.get() : backend_.get(); }
  std::vector<HostRegion> OwnedHostMemory() const override {
    std::vector<HostRegion> regions = backend_->OwnedHostMemory();
    if (shm_) {
      for (const HostRegion& r : shm_->OwnedHostMemory()) regions.push_back(r);
    }
    return regions;
  }
  [[noreturn]] void Abort(int exit_code) override {
    MPI_Abort(context_->data_comm(), exit_code);
    // MPI_Abort does not return in any MPI this runs on; if it did, this process
    // must still not go on.
    std::_Exit(exit_code);
  }

  Status Init(const TransportOptions& options) {
    BRAID_RETURN_IF_ERROR(MpiContext::Create(options.mpi_comm, &context_));
    control_.reset(new MpiControlChannel(context_->control_comm()));
    MpiBackendOptions backend_options;
    backend_options.scratch_bytes = options.host_scratch_bytes;
    BRAID_RETURN_IF_ERROR(MpiBackend::Create(context_->data_comm(), backend_options, &backend_));
    // The MPI backend stays: it carries the shared-memory backend's neighbour
    // exchanges.
    return shm::SetUpHostBackend(options, context_->info(), control_.get(), backend_.get(), &shm_);
  }

 private:
  // Declared first so that it is destroyed last: the others use its communicators.
  std::unique_ptr<MpiContext> context_;
  std::unique_ptr<MpiControlChannel> control_;
  std::unique_ptr<MpiBackend> backend_;
  std::unique_ptr<Backend> shm_;  // destroyed before backend_, which it borrows
};

}  // namespace

Status MpiHost::Create(const TransportOptions& options, std::unique_ptr<MpiHost>* out) {
  std::unique_ptr<MpiHostImpl> host(new MpiHostImpl());
  BRAID_RETURN_IF_ERROR(host->Init(options));
  *out = std::move(host);
  return Status::OK();
}

}  // namespace mpi
}  // namespace braid
