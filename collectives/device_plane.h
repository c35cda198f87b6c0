// The device data plane as a plugin. Everything that needs CUDA or NCCL
// (collectives/cuda/, collectives/nccl/) is built into libbraid_cuda.so, not into
// libbraid: libbraid has no DT_NEEDED on libcudart or libnccl. The transport loads
// the plugin the first time a GPU tensor is executed. A process that only imports
// braid therefore never loads the system's CUDA runtime or NCCL, which would
// otherwise take the sonames before a framework's own (newer) copies and break it
// (torch: "undefined symbol: ncclCommResume"). By the time a GPU tensor exists the
// framework has loaded its copies, and the plugin's DT_NEEDED entries resolve to
// those same libraries.
//
// Registration: the plugin calls RegisterDevicePlugin from a static
// initializer (collectives/cuda/device_plane_plugin.cc), which dlopen runs before
// it returns. Chosen over an extern "C" entry point looked up with dlsym because
// the same library then also works when a program links it directly (the GPU
// tests, braid-kernel-bench, a C++ program linking libbraid_cuda): the dynamic
// loader runs the initializer at start-up, the factory is registered before any
// engine exists, and nothing has to be dlopen'ed or looked up by name.
//
// libbraid and the plugin come from the same build and are installed side by side
// (C++ types cross between them). The plugin is never unloaded: CUDA and NCCL do
// not support being unloaded, and the registered factory must stay valid.
//
// Threading: RegisterDevicePlugin and LoadDevicePlugin may be called from any
// thread; loading is serialised. A plugin's record_ready may be called from any
// thread at any time.
#pragma once

#include <memory>

#include "collectives/backend.h"
#include "collectives/control_channel.h"
#include "collectives/device_ops.h"
#include "collectives/gpu_backend.h"
#include "collectives/transport.h"
#include "common/status.h"

namespace braid {

// A device's backend and memory operations, or why it has none (then both are null).
struct DevicePlane {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<DeviceOps> ops;
  Status failure;
};

struct DevicePlaneOptions {
  // The CUDA device the tensors are on (several ranks may name the same one).
  int device = 0;
  // A device collective still running this long fails (0: never).
  double stall_timeout_seconds = 0.0;
  // BRAID_GPU_BACKEND.
  GpuBackend gpu_backend = GpuBackend::kAuto;
};

// Sets up the data plane for one device. Collective over `control`: every rank
// calls it at the same point, and a rank that fails still takes part in every
// collective step, so that none is left waiting. `host_backend` is the MPI host
// plane, which the host-staged path runs its collectives on.
using DevicePlaneFactory = DevicePlane (*)(ControlChannel* control, const WorldInfo& world,
                                           Backend* host_backend,
                                           const DevicePlaneOptions& options);

// Records an event on `stream` (a cudaStream_t; null: the legacy default stream)
// of `device`, now: the point the stream has reached when a GPU tensor is handed
// to the engine (core/ready_event.h), so that the engine's work waits for what
// was queued there before and not for anything queued after. *event holds the
// cudaEvent_t and returns it to a pool when the last reference goes. Local, any
// thread.
using ReadyRecorder = Status (*)(int device, void* stream, std::shared_ptr<void>* event);

// What the plugin registers.
struct DevicePlugin {
  DevicePlaneFactory create_plane = nullptr;
  ReadyRecorder record_ready = nullptr;
};

// Called by the plugin when it is loaded; a later call replaces the plugin. Both
// members must be set.
void RegisterDevicePlugin(const DevicePlugin& plugin);

// The registered plugin. When none is registered yet, loads libbraid_cuda.so,
// first from the directory libbraid was loaded from, else by its soname (the
// loader's search path), and returns what it registered. Local to this process
// (not collective). Fails with the loader's message (dlerror) when the plugin is
// missing or cannot be loaded.
Status LoadDevicePlugin(DevicePlugin* out);

// Whether a plugin has been registered (without loading one).
bool DevicePluginRegistered();

}  // namespace braid
