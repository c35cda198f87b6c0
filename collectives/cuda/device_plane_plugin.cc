// The CUDA plugin's one point of registration (libbraid_cuda.so): the factory that
// sets up a GPU's data plane and the ready-event recorder, registered with libbraid when the
// library is loaded (collectives/device_plane.h says why from a static initializer). The backend is
// NCCL or the host-staged MPI path, as BRAID_GPU_BACKEND and the ranks' vote
// decide; the memory operations are CudaDeviceOps either way.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "braid/config.h"
#include "collectives/cuda/cuda_device_ops.h"
#include "collectives/cuda/device_memory.h"
#include "collectives/cuda/ready_events.h"
#include "collectives/device_plane.h"
#include "collectives/staged/staged_backend.h"
#include "common/logging.h"
#if BRAID_HAVE_NCCL
#include "collectives/nccl/nccl_backend.h"
#endif

namespace braid {
namespace cuda {
namespace {

constexpr bool kNcclBuilt = BRAID_HAVE_NCCL != 0;

Status CreateNcclPlane(ControlChannel* control, const WorldInfo& world,
                       const DevicePlaneOptions& options, std::unique_ptr<Backend>* out) {
#if BRAID_HAVE_NCCL
  nccl::NcclOptions nccl_options;
  nccl_options.device = options.device;
  nccl_options.stall_timeout_seconds = options.stall_timeout_seconds;
  return nccl::CreateNcclBackend(control, world, nccl_options, out);
#else
  (void)control;
  (void)world;
  (void)options;
  (void)out;
  return InvalidArgument(
      "BRAID_GPU_BACKEND=nccl, but this build of braid has no NCCL; use mpi or auto");
#endif
}

// Which backend every rank uses, decided with one bit-AND over all ranks that
// every rank joins whatever its own outcome so far (`ops`: its memory operations):
// - NCCL needs every rank in one communicator, each on a GPU of its own, so under
//   auto one rank voting mpi (no NCCL, or more local ranks than visible GPUs, i.e.
//   ranks sharing a GPU) makes every rank use mpi;
// - the choice travels one-hot, so ranks that were given different values of
//   BRAID_GPU_BACKEND leave no bit set and all fail, rather than wait for each
//   other in different collectives.
Status AgreeOnBackend(ControlChannel* control, const WorldInfo& world,
                      const DevicePlaneOptions& options, const Status& ops, GpuBackend* chosen) {
  const bool nccl_here = kNcclBuilt && world.local_size <= VisibleDeviceCount();
  std::vector<uint64_t> words = {ops.ok() ? uint64_t{1} : uint64_t{0},
                                 nccl_here ? uint64_t{1} : uint64_t{0},
                                 uint64_t{1} << static_cast<int>(options.gpu_backend)};
  BRAID_RETURN_IF_ERROR(control->AllreduceBitAnd(&words));
  if (!ops.ok()) return ops;
  if (words[0] == 0) {
    return BackendError(
        "the GPU data plane's set-up failed on another rank (its error names the cause)");
  }
  if (words[2] == 0) {
    return InvalidArgument(std::string("BRAID_GPU_BACKEND differs across ranks (") +
                           GpuBackendName(options.gpu_backend) +
                           " here); every rank must use the same value");
  }
  *chosen = options.gpu_backend;
  if (*chosen == GpuBackend::kAuto) *chosen = words[1] != 0 ? GpuBackend::kNccl : GpuBackend::kMpi;
  return Status::OK();
}

DevicePlane CreateCudaPlane(ControlChannel* control, const WorldInfo& world, Backend* host_backend,
                            const DevicePlaneOptions& options) {
  DevicePlane plane;
  // Local and cheap, and first: a rank whose device is unusable says so in the vote,
  // before any communicator is created.
  const Status ops = CudaDeviceOps::Create(options.device, &plane.ops);
  GpuBackend chosen = GpuBackend::kMpi;
  plane.failure = AgreeOnBackend(control, world, options, ops, &chosen);
  if (plane.failure.ok()) {
    BRAID_LOG(Debug) << "GPU tensors on " << DeviceName(options.device) << " travel over "
                     << GpuBackendName(chosen);
    plane.failure =
        chosen == GpuBackend::kNccl
            ? CreateNcclPlane(control, world, options, &plane.backend)
            : staged::CreateStagedBackend(host_backend, world, options.device, &plane.backend);
  }
  if (!plane.failure.ok()) {
    plane.backend.reset();
    plane.ops.reset();
  }
  return plane;
}

// Runs when the library is loaded: by dlopen from the transport, or by the dynamic
// loader at start-up in a program linked with it.
[[maybe_unused]] const bool kRegistered = [] {
  DevicePlugin plugin;
  plugin.create_plane = &CreateCudaPlane;
  plugin.record_ready = &RecordReadyEvent;
  RegisterDevicePlugin(plugin);
  return true;
}();

}  // namespace
}  // namespace cuda
}  // namespace braid
