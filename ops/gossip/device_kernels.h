// The seam between the decentralized SGD op and its GPU kernels. libbraid itself
// has no CUDA code: the kernels (ops/gossip/local_step.cu) live in the CUDA plugin
// library, which registers this table from a static initializer when it is
// loaded, as the restart ops' kernels do (ops/restart/device_kernels.h). Until a
// table is registered, the op given GPU buffers fails with a clear error instead
// of touching device memory from the host. Packing and unpacking the mixing
// buffer go through the restart ops' kernels (ops/restart/pack_memory.h).
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
#include "ops/gossip/local_step.h"

namespace braid::gossip {

struct GossipDeviceKernels {
  // The local momentum step (local_step.h) on one segment of device memory.
  Status (*local_step)(int device, const LocalStepSegment& segment, const LocalStepCoefficients& c,
                       void* stream) = nullptr;
  // SquaredDistanceHost on device memory; the host waits for the result.
  Status (*squared_distance)(int device, const void* x, const void* sum, int64_t count,
                             DataType dtype, double inv_ranks, double* out, void* stream) = nullptr;
};

// Installs `kernels` (null removes them); a later call replaces an earlier one.
void RegisterGossipDeviceKernels(const GossipDeviceKernels* kernels);

// The registered table, or null.
const GossipDeviceKernels* GossipDeviceKernelsOrNull();

}  // namespace braid::gossip
