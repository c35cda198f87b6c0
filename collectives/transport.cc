// The one place where backends are registered: the MPI host plane always, the NCCL
// device plane when the build has it.
#include "collectives/transport.h"

#include <map>

#include "braid/config.h"
#include "collectives/mpi/mpi_host.h"
#if BRAID_HAVE_NCCL
#include "collectives/cuda/cuda_device_ops.h"
#include "collectives/nccl/nccl_backend.h"
#endif

namespace braid {
namespace {

// A device's backend and memory operations, or why it has none.
struct DevicePlane {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<DeviceOps> ops;
  Status failure;
};

class TransportImpl : public Transport {
 public:
  TransportImpl(std::unique_ptr<mpi::MpiHost> host, const TransportOptions& options)
      : host_(std::move(host)), options_(options) {}

  const WorldInfo& info() const override { return host_->info(); }
  ControlChannel* control() override { return host_->control(); }

  Backend* BackendFor(int device, Status* why) override {
    if (device == kCpuDevice) return host_->backend();
    DevicePlane& plane = PlaneFor(device);
    if (why != nullptr) *why = plane.failure;
    return plane.backend.get();
  }

  DeviceOps* DeviceOpsFor(int device) override {
    if (device == kCpuDevice) return nullptr;
    return PlaneFor(device).ops.get();
  }

 private:
  DevicePlane& PlaneFor(int device) {
    auto it = planes_.find(device);
    if (it == planes_.end()) it = planes_.emplace(device, CreatePlane(device)).first;
    return it->second;
  }

  DevicePlane CreatePlane(int device);

  std::unique_ptr<mpi::MpiHost> host_;
  TransportOptions options_;
  // Destroyed before host_, whose control channel they were built on.
  std::map<int, DevicePlane> planes_;
};

#if BRAID_HAVE_NCCL
DevicePlane TransportImpl::CreatePlane(int device) {
  DevicePlane plane;
  nccl::NcclOptions options;
  options.device = device;
  options.stall_timeout_seconds = options_.device_stall_timeout_seconds;
  plane.failure = nccl::CreateNcclBackend(host_->control(), host_->info(), options, &plane.backend);
  if (plane.failure.ok()) plane.failure = cuda::CudaDeviceOps::Create(device, &plane.ops);
  if (!plane.failure.ok()) {
    plane.backend.reset();
    plane.ops.reset();
  }
  return plane;
}
#else
DevicePlane TransportImpl::CreatePlane(int device) {
  DevicePlane plane;
  plane.failure = InvalidArgument("this build of braid has no GPU data plane (built without " +
                                  std::string("CUDA and NCCL); cannot use ") + DeviceName(device));
  return plane;
}
#endif

}  // namespace

bool DeviceTensorsSupported() {
  return BRAID_HAVE_NCCL;
}

Status CreateTransport(const TransportOptions& options, std::unique_ptr<Transport>* out) {
  std::unique_ptr<mpi::MpiHost> host;
  BRAID_RETURN_IF_ERROR(mpi::MpiHost::Create(options, &host));
  out->reset(new TransportImpl(std::move(host), options));
  return Status::OK();
}

}  // namespace braid
