// The one place where backends are registered: the MPI host plane always, device
// backends when the build has them.
#include "collectives/transport.h"

#include "collectives/mpi/mpi_host.h"

namespace braid {
namespace {

class TransportImpl : public Transport {
 public:
  explicit TransportImpl(std::unique_ptr<mpi::MpiHost> host) : host_(std::move(host)) {}

  const WorldInfo& info() const override { return host_->info(); }
  ControlChannel* control() override { return host_->control(); }

  Backend* BackendFor(int device) override {
    for (auto& backend : device_backends_) {
      if (backend->CanHandle(device)) return backend.get();
    }
    Backend* host = host_->backend();
    return host->CanHandle(device) ? host : nullptr;
  }

  void AddDeviceBackend(std::unique_ptr<Backend> backend) {
    device_backends_.push_back(std::move(backend));
  }

 private:
  std::unique_ptr<mpi::MpiHost> host_;
  // Destroyed before host_, whose communicators they may use.
  std::vector<std::unique_ptr<Backend>> device_backends_;
};

}  // namespace

bool DeviceTensorsSupported() {
  return false;  // no device backend is registered below yet
}

Status CreateTransport(const TransportOptions& options, std::unique_ptr<Transport>* out) {
  std::unique_ptr<mpi::MpiHost> host;
  BRAID_RETURN_IF_ERROR(mpi::MpiHost::Create(options, &host));
  std::unique_ptr<TransportImpl> transport(new TransportImpl(std::move(host)));
  // The NCCL backend registers here, under #if BRAID_HAVE_NCCL (<braid/config.h>),
  // with transport->AddDeviceBackend(...).
  *out = std::move(transport);
  return Status::OK();
}

}  // namespace braid
