// Element-wise kernels on host memory: reduction of one buffer into another and
// scaling. float16 and bfloat16 are reduced through float32 and rounded to nearest
// even, which MPI cannot do (it has no such types).
#pragma once

#include <cstdint>

#include "common/types.h"

namespace braid {
namespace cpu {

// dst[i] = dst[i] op src[i] for i < count. `op` is kSum, kMin, kMax or kProduct.
void ReduceInto(void* dst, const void* src, int64_t count, DataType dtype, ReduceOp op);

// dst[i] = src[i] * factor (dst may equal src). Integers are scaled in double and
// rounded toward zero; factor 1 is a plain copy (or nothing when dst == src).
void ScaleCopy(void* dst, const void* src, int64_t count, DataType dtype, double factor);

// Integer average after a sum: dst[i] /= divisor, rounding toward zero.
// Floating types are scaled by 1/divisor.
void DivideBy(void* buf, int64_t count, DataType dtype, int64_t divisor);

// ScaleCopy, then DivideBy: what a postscale and an integer average do after a sum
// (the host form of the device's batched scaled copy).
inline void ScaleCopy(void* dst, const void* src, int64_t count, DataType dtype, double factor,
                      int64_t divisor) {
  ScaleCopy(dst, src, count, dtype, factor);
  DivideBy(dst, count, dtype, divisor);
}

}  // namespace cpu
}  // namespace braid
