// Calls a generic function with the magnitude-key traits (magnitude.h) of a value
// dtype, and reads an index of either index dtype. Shared by the host kernels and
// the CUDA ones; the callers have validated the dtypes.
#pragma once

#include <cstdint>

#include "common/types.h"
#include "ops/compress/magnitude.h"

namespace braid::compress {

// f(HalfKey{}), f(BFloat16Key{}), f(FloatKey{}) or f(DoubleKey{}) by `dtype`.
template <typename F>
auto WithKeyTraits(DataType dtype, F&& f) {
  switch (dtype) {
    case DataType::kFloat16:
      return f(HalfKey{});
    case DataType::kBFloat16:
      return f(BFloat16Key{});
    case DataType::kFloat32:
      return f(FloatKey{});
    default:
      return f(DoubleKey{});
  }
}

// Whether `dtype` is a value dtype the selection kernels take.
inline bool IsValueType(DataType dtype) {
  return dtype == DataType::kFloat16 || dtype == DataType::kBFloat16 ||
         dtype == DataType::kFloat32 || dtype == DataType::kFloat64;
}

inline bool IsIndexType(DataType dtype) {
  return dtype == DataType::kInt32 || dtype == DataType::kInt64;
}

}  // namespace braid::compress
