// The seam between the restart ops and their GPU kernels. libbraid itself has no
// CUDA code: the kernels (ops/restart/slowmo_update.cu) live in the CUDA plugin
// library, which registers this table from a static initializer when it is loaded,
// the same way the device data plane registers itself. Until a table is
// registered, a restart op given GPU buffers fails with a clear error instead of
// touching device memory from the host.
//
// Every function works on memory of one GPU (`device`) and orders its work on
// `stream` (the cudaStream_t the buffers were produced on), except where it says
// that the host waits.
//
// Threading: registration and lookup may happen from any thread; the table must
// stay valid for the rest of the process (the plugin is never unloaded).
#pragma once

#include <cstdint>

#include "common/status.h"
#include "common/types.h"
#include "ops/restart/slowmo_update.h"

namespace braid::restart {

struct RestartDeviceKernels {
  // `bytes` of memory on `device`; freed with release.
  Status (*allocate)(int device, int64_t bytes, void** memory) = nullptr;
  void (*release)(int device, void* memory) = nullptr;
  // dst[i] = src[i] * factor for `count` float32 / float64 elements (pack: factor 1;
  // unpack: factor 1/N).
  Status (*scale_copy)(int device, void* dst, const void* src, int64_t count, DataType dtype,
                       double factor, void* stream) = nullptr;
  // Copies `bytes` between host memory and device memory; the host waits for it
  // (and for the work queued on `stream` before it).
  Status (*copy_to_host)(int device, void* host_dst, const void* device_src, int64_t bytes,
                         void* stream) = nullptr;
  Status (*copy_from_host)(int device, void* device_dst, const void* host_src, int64_t bytes,
                           void* stream) = nullptr;
  // The SlowMo pass (slowmo_update.h) on one segment of device memory.
  Status (*slowmo_update)(int device, const SlowMoSegment& segment, const SlowMoCoefficients& c,
                          void* stream) = nullptr;
};

// Installs `kernels` (null removes them); a later call replaces an earlier one.
void RegisterRestartDeviceKernels(const RestartDeviceKernels* kernels);

// The registered table, or null.
const RestartDeviceKernels* RestartDeviceKernelsOrNull();

}  // namespace braid::restart
