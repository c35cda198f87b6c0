// The transport: the MPI host plane always; for each GPU the device plane that the
// CUDA plugin registers (collectives/device_plane.h), loaded the first time a GPU
// tensor is executed.
#include "collectives/transport.h"

#include <map>
#include <string>
#include <vector>

#include "braid/config.h"
#include "collectives/device_plane.h"
#include "collectives/mpi/mpi_host.h"

namespace braid {
namespace {

// Every rank learns whether every rank's `local` is OK. What follows is collective,
// so a rank that failed alone must not go on without the others, nor the others
// without it. A failing rank keeps its own error; the others get `elsewhere`.
Status AgreeOnOutcome(ControlChannel* control, const Status& local, const std::string& elsewhere) {
  std::vector<uint64_t> ok{local.ok() ? uint64_t{1} : uint64_t{0}};
  BRAID_RETURN_IF_ERROR(control->AllreduceBitAnd(&ok));
  if (!local.ok()) return local;
  if (ok[0] == 0) return BackendError(elsewhere + " (its error names the cause)");
  return Status::OK();
}

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

DevicePlane TransportImpl::CreatePlane(int device) {
  DevicePlane plane;
  if (!DeviceTensorsSupported()) {
    plane.failure = InvalidArgument(
        "this build of braid has no GPU data plane (built without CUDA); cannot use " +
        DeviceName(device));
    return plane;
  }
  ControlChannel* control = host_->control();
  DevicePlugin plugin;
  plane.failure = AgreeOnOutcome(control, LoadDevicePlugin(&plugin),
                                 "the GPU data plane could not be loaded on another rank");
  if (!plane.failure.ok()) return plane;
  DevicePlaneOptions options;
  options.device = device;
  options.stall_timeout_seconds = options_.device_stall_timeout_seconds;
  options.gpu_backend = options_.gpu_backend;
  plane = plugin.create_plane(control, host_->info(), host_->backend(), options);
  if (plane.failure.ok() && (!plane.backend || !plane.ops)) {
    plane.failure = Internal("the GPU data plane set up nothing for " + DeviceName(device));
  }
  // A rank whose plane failed after the others' succeeded must not leave them
  // running collectives it will never join.
  plane.failure = AgreeOnOutcome(control, plane.failure,
                                 "the GPU data plane could not be set up on another rank");
  if (!plane.failure.ok()) {
    plane.backend.reset();
    plane.ops.reset();
  }
  return plane;
}

}  // namespace

bool DeviceTensorsSupported() {
  return BRAID_HAVE_CUDA || DevicePluginRegistered();
}

Status CreateTransport(const TransportOptions& options, std::unique_ptr<Transport>* out) {
  std::unique_ptr<mpi::MpiHost> host;
  BRAID_RETURN_IF_ERROR(mpi::MpiHost::Create(options, &host));
  out->reset(new TransportImpl(std::move(host), options));
  return Status::OK();
}

}  // namespace braid
