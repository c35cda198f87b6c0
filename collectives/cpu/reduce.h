// Element-wise kernels on host memory: reduction of one buffer into another and
// scaling. float16 and bfloat16 are reduced through float32 and rounded to nearest
// even, which MPI cannot do (it has no such types).
//
// Threading: plain functions on the caller's buffers; safe from any thread.
#pragma once

#include <cstdint>

#include "common/types.h"

namespace braid {
namespace cpu {

// dst[i] = dst[i] op src[i] for i < count. `op` is kSum, kMin, kMax or kProduct.
void ReduceInto(void* dst, const void* src, int64_t count, DataType dtype, ReduceOp op);

// float16 / bfloat16 reductions across ranks that round once: the contributions
// are combined in float32 and the result is rounded to the 16-bit format at the
// end, instead of once per hop (which loses the low bits of a long sum and
// overflows on partial sums beyond the format's range even when the result, an
// average say, is within it). `half` arguments hold `dtype`, kFloat16 or
// kBFloat16; `op` is kSum, kMin, kMax or kProduct. float() widens exactly, round()
// is to nearest even; `scale` (an average's float32(1/n)) multiplies in float32
// before the rounding.
//   WidenHalf:           out[i] = float(half[i])
//   NarrowHalf:          half[i] = round(scale * in[i])
//   ReduceHalvesRounded: half[i] = round(scale * (float(half[i]) op float(others[0][i])
//                                                 op ... op float(others[m-1][i])))
void WidenHalf(float* out, const void* half, int64_t count, DataType dtype);
void NarrowHalf(void* half, const float* in, int64_t count, DataType dtype, float scale = 1.0f);
void ReduceHalvesRounded(void* half, const void* const* others, int num_others, int64_t count,
                         DataType dtype, ReduceOp op, float scale = 1.0f);

// dst[i] = src[i] * factor (dst may equal src), in Horovod's arithmetic (its
// ScaleBuffer): float32, float16 and bfloat16 multiply by float32(factor) in
// float32 (the 16-bit formats then round to nearest even); float64 and the
// integers multiply in double, integers truncating toward zero and saturating at
// the type's range; bool keeps x != 0 && factor != 0. Factor 1 is a plain copy
// (or nothing when dst == src).
void ScaleCopy(void* dst, const void* src, int64_t count, DataType dtype, double factor);

// Integer average after a sum: dst[i] /= divisor, rounding toward zero (exactly:
// Horovod multiplies by 1.0 / n instead, which is not exact for every n, e.g.
// 49 * (1.0 / 49) < 1). Floating types are scaled by 1/divisor; bool is unchanged.
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
