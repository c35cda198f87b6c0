// The seam between the compress ops and their GPU kernels. libbraid itself has no
// CUDA code: the kernels (ops/compress/topk_select.cu, ops/compress/memory.cu) live
// in the CUDA plugin library, which registers this table from a static
// initializer when it is loaded. Until a table is registered, a compress op given
// GPU buffers loads the plugin, and fails with a clear error if it brings none.
//
// Every function works on memory of one GPU (`device`), orders its work on
// `stream` (a cudaStream_t) and returns without waiting for it, except where it
// says that the host waits. Arguments are validated by the callers
// (selection.cc, memory.cc); value dtypes are float16, bfloat16, float32 and
// float64, index dtypes int32 and int64. Keys are magnitude keys (magnitude.h)
// widened to 64 bits.
//
// Threading: registration and lookup may happen from any thread; the table must
// stay valid for the rest of the process (the plugin is never unloaded).
#pragma once

#include <cstdint>

#include "common/status.h"
#include "common/types.h"

namespace braid::compress {

// A flat run of device memory: `n` values of `dtype`.
struct DeviceValues {
  const void* data = nullptr;
  int64_t n = 0;
  DataType dtype = DataType::kFloat32;
};

// Where a selection writes: indices (ascending, each plus `index_base`) and, when
// `values` is not null, the selected values in the same order.
struct DeviceSelectionOut {
  void* indices = nullptr;
  DataType index_dtype = DataType::kInt64;
  void* values = nullptr;
  int64_t index_base = 0;
};

struct CompressDeviceKernels {
  // Exact top-k by magnitude (k <= x.n) by radix select: 8-bit digit histograms
  // over the key's bits find the k-th key T, then one ordered compaction writes
  // every element with a key above T and the first ones (by index) equal to T.
  Status (*topk)(int device, const DeviceValues& x, int64_t k, const DeviceSelectionOut& out,
                 void* stream) = nullptr;
  // The keys at the threshold estimate's sample positions (magnitude.h,
  // SamplePosition with `seed`), m of them, into host memory; the host waits.
  Status (*sample_keys)(int device, const DeviceValues& x, uint64_t seed, int64_t m,
                        uint64_t* host_keys, void* stream) = nullptr;
  // How many elements have a key >= `threshold`; the host waits.
  Status (*count_at_least)(int device, const DeviceValues& x, uint64_t threshold, int64_t* count,
                           void* stream) = nullptr;
  // Of the `candidates` elements with a key >= `threshold` (as counted by
  // count_at_least), the min(k, candidates) largest (ties: smaller index).
  Status (*select_at_least)(int device, const DeviceValues& x, uint64_t threshold,
                            int64_t candidates, int64_t k, const DeviceSelectionOut& out,
                            void* stream) = nullptr;
  // values[j] = x[indices[j]] for j < count.
  Status (*gather)(int device, const DeviceValues& x, const void* indices, DataType index_dtype,
                   int64_t count, void* values, void* stream) = nullptr;
  // Copies `bytes` between host memory and device memory; the host waits (for
  // the work queued on `stream` before it too).
  Status (*copy_from_host)(int device, void* device_dst, const void* host_src, int64_t bytes,
                           void* stream) = nullptr;
  Status (*copy_to_host)(int device, void* host_dst, const void* device_src, int64_t bytes,
                         void* stream) = nullptr;
  // The error-feedback pass (memory.h): e = e + a * g + b * d (d may be null).
  Status (*error_feedback)(int device, void* e, const void* g, const void* d, int64_t n,
                           DataType dtype, double a, double b, void* stream) = nullptr;
  // The sent step (memory.h): values[j] = e[indices[j]]; e[indices[j]] = 0.
  Status (*extract_sent)(int device, void* e, int64_t n, DataType dtype, const void* indices,
                         DataType index_dtype, int64_t count, void* values, void* stream) = nullptr;
};

// Installs `kernels` (null removes them); a later call replaces an earlier one.
void RegisterCompressDeviceKernels(const CompressDeviceKernels* kernels);

// The registered table, or null.
const CompressDeviceKernels* CompressDeviceKernelsOrNull();

// The registered table, loading the CUDA plugin first when none is registered;
// fails naming `op` and `device` when no kernels are available.
Status CompressDeviceKernelsFor(const char* op, int device, const CompressDeviceKernels** out);

}  // namespace braid::compress
