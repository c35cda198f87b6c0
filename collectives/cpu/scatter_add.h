// The host side of a sparse allreduce: adding (index, row) pairs into a dense
// tensor, and checking indices before anything is written.
//
// Threading: plain functions on the caller's buffers; safe from any thread.
#pragma once

#include <cstdint>

#include "common/types.h"

namespace braid {
namespace cpu {

// For each pair p < count: dense[indices[p] * row + j] += factor * values[p * row + j]
// for j < row, in pair order (so duplicate indices add up, deterministically).
// float16 / bfloat16 add in float32 and round once per pair. Pairs whose index is
// outside [0, length) are skipped (callers check first: FindIndexOutOfRange).
void ScatterAdd(void* dense, int64_t length, int64_t row, DataType dtype, const void* indices,
                DataType index_dtype, const void* values, int64_t count, double factor);

// The position of the first of `count` indices outside [0, length), or -1; its
// value in *value.
int64_t FindIndexOutOfRange(const void* indices, DataType index_dtype, int64_t count,
                            int64_t length, int64_t* value);

}  // namespace cpu
}  // namespace braid
