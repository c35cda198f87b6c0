// The transport: the host plane always (MPI, or shared memory when every rank is on
// one host: collectives/shm/shm_setup.h); for each GPU the device plane that the
// CUDA plugin registers (collectives/device_plane.h), loaded the first time a GPU
// tensor is executed.
#include "collectives/transport.h"

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "braid/config.h"
#include "collectives/agreement.h"
#include "collectives/device_plane.h"
#include "collectives/mpi/mpi_host.h"

namespace braid {
namespace {

class TransportImpl : public Transport {
 public:
  TransportImpl(std::unique_ptr<mpi::MpiHost> host, const TransportOptions& options)
      : host_(std::move(host)), options_(options) {}

  const WorldInfo& info() const override { return host_->info(); }
  ControlChannel* control() override { return host_->control(); }
  std::vector<HostRegion> OwnedHostMemory() const override { return host_->OwnedHostMemory(); }

  Status SetUpDevicePlane(int device) override {
    auto it = planes_.find(device);
    if (it == planes_.end()) it = planes_.emplace(device, CreatePlane(device)).first;
    return it->second.failure;
  }

  Backend* BackendFor(int device, Status* why) override {
    if (device == kCpuDevice) return host_->backend();
    auto it = planes_.find(device);
    if (it == planes_.end()) {
      if (why != nullptr)
        *why = Internal("no GPU data plane has been set up for " + DeviceName(device));
      return nullptr;
    }
    if (why != nullptr) *why = it->second.failure;
    return it->second.backend.get();
  }

  [[noreturn]] void Abort(int exit_code) override {
    // planes_ is only changed by the coordinator thread, which is stuck in a
    // collective when this is called.
    for (auto& kv : planes_)
      if (kv.second.backend) kv.second.backend->Abort();
    host_->Abort(exit_code);
    std::_Exit(exit_code);  // not reached: MpiHost::Abort does not return
  }

  DeviceOps* DeviceOpsFor(int device) override {
    if (device == kCpuDevice) return nullptr;
    auto it = planes_.find(device);
    return it == planes_.end() ? nullptr : it->second.ops.get();
  }

 private:
  DevicePlane CreatePlane(int device);

  std::unique_ptr<mpi::MpiHost> host_;
  TransportOptions options_;
  // Destroyed before host_, whose control channel they were built on.
  std::map<int, DevicePlane> planes_;
};

// Every step that can fail on one rank is agreed on before the next collective
// step, so no rank is left in a step the others skip.
DevicePlane TransportImpl::CreatePlane(int device) {
  DevicePlane plane;
  ControlChannel* control = host_->control();
  Status supported;
  if (!DeviceTensorsSupported()) {
    supported = InvalidArgument(
        "this build of braid has no GPU data plane (built without CUDA); cannot use " +
        DeviceName(device));
  }
  DevicePlugin plugin;
  if (supported.ok()) supported = LoadDevicePlugin(&plugin);
  plane.failure = AgreeOnStatus(control, supported);
  if (!plane.failure.ok()) return plane;
  DevicePlaneOptions options;
  options.device = device;
  options.stall_timeout_seconds = options_.device_stall_timeout_seconds;
  options.gpu_backend = options_.gpu_backend;
  // The host backend is the one BRAID_HOST_BACKEND chose, so the host-staged GPU
  // path (collectives/staged/) reduces through shared memory when the host does.
  plane = plugin.create_plane(control, host_->info(), host_->backend(), options);
  if (plane.failure.ok() && (!plane.backend || !plane.ops)) {
    plane.failure = Internal("the GPU data plane set up nothing for " + DeviceName(device));
  }
  // A rank whose plane failed after the others' succeeded must not leave them
  // running collectives it will never join.
  plane.failure = AgreeOnStatus(control, plane.failure);
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
