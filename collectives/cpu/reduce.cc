// Element-wise host kernels. Every loop is a template over the element type and
// the operator so that the compiler sees a plain, branch-free body it can
// auto-vectorise; the dtype/op switch happens once per call, never per element.
#include "collectives/cpu/reduce.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "collectives/cpu/half_convert.h"
#include "collectives/cpu/reduce_half_x86.h"

namespace braid {
namespace cpu {
namespace {

// Integer sums and products wrap (as MPI's do in practice) instead of invoking
// signed-overflow undefined behaviour: they are computed in the unsigned type.
template <class T, bool = std::is_integral<T>::value>
struct Arith {
  using type = T;
};
template <class T>
struct Arith<T, true> {
  using type = std::make_unsigned_t<T>;
};

struct Sum {
  template <class T>
  static T Apply(T a, T b) {
    using U = typename Arith<T>::type;
    return static_cast<T>(static_cast<U>(a) + static_cast<U>(b));
  }
};
struct Product {
  template <class T>
  static T Apply(T a, T b) {
    using U = typename Arith<T>::type;
    return static_cast<T>(static_cast<U>(a) * static_cast<U>(b));
  }
};
struct Min {
  template <class T>
  static T Apply(T a, T b) {
    return b < a ? b : a;
  }
};
struct Max {
  template <class T>
  static T Apply(T a, T b) {
    return a < b ? b : a;
  }
};

template <class T, class Op>
void ReduceLoop(T* __restrict dst, const T* __restrict src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = Op::template Apply<T>(dst[i], src[i]);
}

template <class T, class Op>
void ReduceTyped(void* dst, const void* src, int64_t count) {
  ReduceLoop<T, Op>(static_cast<T*>(dst), static_cast<const T*>(src), count);
}

// bool: sum and max are OR, product and min are AND, as numpy and torch combine
// bools element-wise. Any non-zero byte counts as true; results are 0 or 1.
struct Or {
  static uint8_t Apply(uint8_t a, uint8_t b) { return static_cast<uint8_t>((a | b) != 0); }
};
struct And {
  static uint8_t Apply(uint8_t a, uint8_t b) { return static_cast<uint8_t>(a != 0 && b != 0); }
};

template <class Logical>
void ReduceBool(void* dst_v, const void* src_v, int64_t count) {
  auto* dst = static_cast<uint8_t*>(dst_v);
  const auto* src = static_cast<const uint8_t*>(src_v);
  for (int64_t i = 0; i < count; ++i) dst[i] = Logical::Apply(dst[i], src[i]);
}

// float16 / bfloat16: widen a block of each operand to float32, reduce there
// (one rounding per element, as a float32 accumulator would do), narrow back.
// Blocks stay in L1 so the widening costs no memory traffic.
constexpr int64_t kHalfBlock = 1024;

template <class Op, const HalfCodec& (*Codec)()>
void ReduceHalfBlocks(void* dst_v, const void* src_v, int64_t count) {
  const HalfCodec& codec = Codec();
  auto* dst = static_cast<uint16_t*>(dst_v);
  const auto* src = static_cast<const uint16_t*>(src_v);
  alignas(64) float a[kHalfBlock];
  alignas(64) float b[kHalfBlock];
  for (int64_t i = 0; i < count; i += kHalfBlock) {
    const int64_t n = std::min(kHalfBlock, count - i);
    codec.to_float(dst + i, a, n);
    codec.to_float(src + i, b, n);
    ReduceLoop<float, Op>(a, b, n);
    codec.from_float(a, dst + i, n);
  }
}

using ReduceFn = void (*)(void*, const void*, int64_t);

template <class Op>
ReduceFn PickReduce(DataType dtype) {
  switch (dtype) {
    case DataType::kUInt8:
      return &ReduceTyped<uint8_t, Op>;
    case DataType::kInt8:
      return &ReduceTyped<int8_t, Op>;
    case DataType::kInt32:
      return &ReduceTyped<int32_t, Op>;
    case DataType::kInt64:
      return &ReduceTyped<int64_t, Op>;
    case DataType::kFloat16:
      return &ReduceHalfBlocks<Op, &Float16Codec>;
    case DataType::kBFloat16:
      return &ReduceHalfBlocks<Op, &BFloat16Codec>;
    case DataType::kFloat32:
      return &ReduceTyped<float, Op>;
    case DataType::kFloat64:
      return &ReduceTyped<double, Op>;
    case DataType::kInt16:
      return &ReduceTyped<int16_t, Op>;
    case DataType::kBool:
      return std::is_same<Op, Sum>::value || std::is_same<Op, Max>::value ? &ReduceBool<Or>
                                                                          : &ReduceBool<And>;
  }
  return nullptr;
}

ReduceFn PickReduce(DataType dtype, ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return PickReduce<Sum>(dtype);
    case ReduceOp::kMin:
      return PickReduce<Min>(dtype);
    case ReduceOp::kMax:
      return PickReduce<Max>(dtype);
    case ReduceOp::kProduct:
      return PickReduce<Product>(dtype);
    case ReduceOp::kAverage:
      break;  // the caller sums and divides
  }
  return nullptr;
}

// Scaling follows Horovod's ScaleBuffer, so that a pre- or postscaled allreduce
// agrees with Horovod bit for bit: the factor is converted to the element's
// arithmetic type first, float32 for float32, float16 and bfloat16 (one float32
// multiply, then one rounding to the 16-bit format), double for float64 and for
// the integers. An integer's double product is truncated toward zero; where it is
// out of the type's range (Horovod's conversion is undefined there) it saturates.
template <class T>
void ScaleLoop(T* dst, const T* src, int64_t n, double factor) {
  if constexpr (std::is_integral<T>::value) {
    // 2^digits is exact in double, unlike max() for int64 (which rounds up to 2^63).
    constexpr double lo = static_cast<double>(std::numeric_limits<T>::min());
    constexpr double above = static_cast<double>(uint64_t{1} << std::numeric_limits<T>::digits);
    constexpr T hi = std::numeric_limits<T>::max();
    for (int64_t i = 0; i < n; ++i) {
      double v = static_cast<double>(src[i]) * factor;
      v = v < lo ? lo : v;
      dst[i] = v >= above ? hi : static_cast<T>(v);
    }
  } else {
    using Arithmetic = std::conditional_t<std::is_same<T, double>::value, double, float>;
    const Arithmetic f = static_cast<Arithmetic>(factor);
    for (int64_t i = 0; i < n; ++i) dst[i] = f * src[i];
  }
}

void ScaleHalf(uint16_t* dst, const uint16_t* src, int64_t count, double factor,
               const HalfCodec& codec) {
  alignas(64) float a[kHalfBlock];
  for (int64_t i = 0; i < count; i += kHalfBlock) {
    const int64_t n = std::min(kHalfBlock, count - i);
    codec.to_float(src + i, a, n);
    ScaleLoop<float>(a, a, n, factor);
    codec.from_float(a, dst + i, n);
  }
}

// bool(x * factor): a validated request never scales a bool (core/request.cc), but
// the kernel keeps the type's values 0 and 1 whatever it is given.
void ScaleBool(uint8_t* dst, const uint8_t* src, int64_t n, double factor) {
  const bool keep = factor != 0.0;
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<uint8_t>(keep && src[i] != 0);
}

template <class T>
void ScaleTyped(void* dst, const void* src, int64_t count, double factor) {
  ScaleLoop<T>(static_cast<T*>(dst), static_cast<const T*>(src), count, factor);
}

// int64 quotients can exceed double's 53-bit mantissa: divide as integers.
void DivideInt64(int64_t* buf, int64_t count, int64_t divisor) {
  for (int64_t i = 0; i < count; ++i) buf[i] /= divisor;
}

// For the narrow integer types, a double quotient truncated toward zero equals
// the integer quotient (|x| < 2^31 leaves far more than enough precision), and
// unlike integer division it vectorises.
template <class T>
void DivideNarrow(T* buf, int64_t count, int64_t divisor) {
  const double d = static_cast<double>(divisor);
  for (int64_t i = 0; i < count; ++i) buf[i] = static_cast<T>(static_cast<double>(buf[i]) / d);
}

// The kernels that round once work through L1-sized blocks: every 16-bit operand
// is widened into a stack block, combined there, and the result narrowed once.
void ReduceRounded(uint16_t* half, const void* const* others, int num_others, int64_t count,
                   ReduceFn combine, float scale, const HalfCodec& codec) {
  alignas(64) float acc[kHalfBlock];
  alignas(64) float wide[kHalfBlock];
  for (int64_t i = 0; i < count; i += kHalfBlock) {
    const int64_t n = std::min(kHalfBlock, count - i);
    codec.to_float(half + i, acc, n);
    for (int m = 0; m < num_others; ++m) {
      codec.to_float(static_cast<const uint16_t*>(others[m]) + i, wide, n);
      combine(acc, wide, n);
    }
    if (scale != 1.0f) ScaleLoop<float>(acc, acc, n, scale);
    codec.from_float(acc, half + i, n);
  }
}

void ScaledNarrow(uint16_t* half, const float* in, int64_t count, float scale,
                  const HalfCodec& codec) {
  alignas(64) float wide[kHalfBlock];
  for (int64_t i = 0; i < count; i += kHalfBlock) {
    const int64_t n = std::min(kHalfBlock, count - i);
    ScaleLoop<float>(wide, in + i, n, scale);
    codec.from_float(wide, half + i, n);
  }
}

const HalfCodec& CodecOf(DataType dtype) {
  return dtype == DataType::kBFloat16 ? BFloat16Codec() : Float16Codec();
}

}  // namespace

void ReduceInto(void* dst, const void* src, int64_t count, DataType dtype, ReduceOp op) {
  if (count <= 0) return;
  if (dtype == DataType::kFloat16 || dtype == DataType::kBFloat16) {
    // The single-pass x86 kernel takes whole groups of 8; the blocks finish.
    const int64_t done = ReduceHalfX86(dst, src, count, dtype, op);
    dst = static_cast<uint16_t*>(dst) + done;
    src = static_cast<const uint16_t*>(src) + done;
    count -= done;
  }
  ReduceFn fn = PickReduce(dtype, op);
  if (fn != nullptr && count > 0) fn(dst, src, count);
}

void ScaleCopy(void* dst, const void* src, int64_t count, DataType dtype, double factor) {
  if (count <= 0) return;
  if (factor == 1.0) {
    if (dst != src) std::memcpy(dst, src, static_cast<size_t>(count) * DataTypeSize(dtype));
    return;
  }
  switch (dtype) {
    case DataType::kUInt8:
      return ScaleTyped<uint8_t>(dst, src, count, factor);
    case DataType::kInt8:
      return ScaleTyped<int8_t>(dst, src, count, factor);
    case DataType::kInt32:
      return ScaleTyped<int32_t>(dst, src, count, factor);
    case DataType::kInt64:
      return ScaleTyped<int64_t>(dst, src, count, factor);
    case DataType::kFloat32:
      return ScaleTyped<float>(dst, src, count, factor);
    case DataType::kFloat64:
      return ScaleTyped<double>(dst, src, count, factor);
    case DataType::kFloat16:
      return ScaleHalf(static_cast<uint16_t*>(dst), static_cast<const uint16_t*>(src), count,
                       factor, Float16Codec());
    case DataType::kBFloat16:
      return ScaleHalf(static_cast<uint16_t*>(dst), static_cast<const uint16_t*>(src), count,
                       factor, BFloat16Codec());
    case DataType::kInt16:
      return ScaleTyped<int16_t>(dst, src, count, factor);
    case DataType::kBool:
      return ScaleBool(static_cast<uint8_t*>(dst), static_cast<const uint8_t*>(src), count, factor);
  }
}

// A divisor below 1 has no meaning for an average and is ignored.
void DivideBy(void* buf, int64_t count, DataType dtype, int64_t divisor) {
  if (count <= 0 || divisor <= 1) return;
  switch (dtype) {
    case DataType::kUInt8:
      return DivideNarrow(static_cast<uint8_t*>(buf), count, divisor);
    case DataType::kInt8:
      return DivideNarrow(static_cast<int8_t*>(buf), count, divisor);
    case DataType::kInt16:
      return DivideNarrow(static_cast<int16_t*>(buf), count, divisor);
    case DataType::kInt32:
      return DivideNarrow(static_cast<int32_t*>(buf), count, divisor);
    case DataType::kInt64:
      return DivideInt64(static_cast<int64_t*>(buf), count, divisor);
    case DataType::kFloat16:
    case DataType::kBFloat16:
    case DataType::kFloat32:
    case DataType::kFloat64:
      return ScaleCopy(buf, buf, count, dtype, 1.0 / static_cast<double>(divisor));
    case DataType::kBool:
      return;  // bool(x / divisor) == bool(x) for a divisor >= 1
  }
}

void WidenHalf(float* out, const void* half, int64_t count, DataType dtype) {
  if (count > 0) CodecOf(dtype).to_float(static_cast<const uint16_t*>(half), out, count);
}

void NarrowHalf(void* half, const float* in, int64_t count, DataType dtype, float scale) {
  if (count <= 0) return;
  auto* h = static_cast<uint16_t*>(half);
  if (scale == 1.0f) return CodecOf(dtype).from_float(in, h, count);
  ScaledNarrow(h, in, count, scale, CodecOf(dtype));
}

void ReduceHalvesRounded(void* half, const void* const* others, int num_others, int64_t count,
                         DataType dtype, ReduceOp op, float scale) {
  ReduceFn combine = PickReduce(DataType::kFloat32, op);
  if (count <= 0 || combine == nullptr) return;
  // The x86 kernel takes whole groups of 8 in registers; the blocks finish.
  const int64_t done = ReduceRoundedX86(half, others, num_others, count, dtype, op, scale);
  if (done == count) return;
  std::vector<const void*> rest(others, others + num_others);
  for (const void*& p : rest) p = static_cast<const uint16_t*>(p) + done;
  ReduceRounded(static_cast<uint16_t*>(half) + done, rest.data(), num_others, count - done, combine,
                scale, CodecOf(dtype));
}

}  // namespace cpu
}  // namespace braid
