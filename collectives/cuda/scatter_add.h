// The sparse collectives' kernels on one CUDA device (collectives/sparse/): the
// scatter-add of (index, row) pairs into a dense tensor and the index range check.
// Queued on `stream`; callers set the device.
//
// Threading: plain functions; safe from any thread.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "common/status.h"
#include "common/types.h"

namespace braid {
namespace cuda {

// dense[indices[p] * row + j] += factor * values[p * row + j] with atomics; pairs
// whose index is outside [0, length) are skipped.
Status ScatterAdd(void* dense, int64_t length, int64_t row, DataType dtype, const void* indices,
                  DataType index_dtype, const void* values, int64_t count, double factor,
                  cudaStream_t stream);

// Writes into *first (device memory, one unsigned long long, set to ~0 before) the
// lowest position p < count whose index is outside [0, length).
Status FindIndexOutOfRange(const void* indices, DataType index_dtype, int64_t count, int64_t length,
                           unsigned long long* first, cudaStream_t stream);

}  // namespace cuda
}  // namespace braid
