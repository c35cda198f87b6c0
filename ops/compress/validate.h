// Argument checks shared by the compress entry points (selection.cc, threshold.cc,
// random_k.cc, memory.cc), and the choice between the host kernels and the
// registered GPU ones. Internal to ops/compress/.
//
// Threading: stateless.
#pragma once

#include <cstdint>

#include "common/buffer.h"
#include "common/status.h"
#include "ops/compress/device_kernels.h"

namespace braid::compress {

// x: a value dtype, count >= 0, data when count > 0.
Status CheckValues(const char* op, const BufferView& x);

// indices (int32 or int64) and values (null data: not wanted; else x's dtype) with
// room for `needed` entries on x's device; int32 indices only when every index
// (up to x.count - 1) fits.
Status CheckOutputs(const char* op, const BufferView& x, const BufferView& indices,
                    const BufferView& values, int64_t needed);

// 0 <= k <= x.count.
Status CheckK(const char* op, const BufferView& x, int64_t k);

// Null for host memory; otherwise the registered GPU kernels (loading the plugin).
Status KernelsFor(const char* op, const BufferView& x, const CompressDeviceKernels** kernels);

inline DeviceValues ValuesOf(const BufferView& x) {
  return DeviceValues{x.data, x.count, x.dtype};
}

inline DeviceSelectionOut OutputOf(const BufferView& indices, const BufferView& values) {
  return DeviceSelectionOut{indices.data, indices.dtype, values.data, 0};
}

}  // namespace braid::compress
