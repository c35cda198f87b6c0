// The per-element arithmetic of the batched copy, written once for host and device
// so that it is, operation for operation, the host data plane's (collectives/cpu),
// which is Horovod's ScaleBuffer:
//   Scale:  cpu::ScaleCopy with a factor != 1
//           integers: double product, truncated, saturating at the type's range
//           float32 / float16 / bfloat16: float32(factor) times the value in
//           float32 (then rounded to the 16-bit format, nearest even); float64:
//           the double product
//   Divide: cpu::DivideBy with a divisor > 1
//           int64: integer division; narrower integers: double quotient truncated;
//           floating types: Scale by 1 / divisor
// Only IEEE round-to-nearest multiplies, divides and conversions appear, so device
// and host agree bit for bit as long as the device code is not built with
// --use_fast_math / -ftz=true (single-precision flushing would change subnormals).
#pragma once

#include <cstdint>
#include <cstring>

#define BRAID_HD __host__ __device__ __forceinline__

namespace braid {
namespace cuda {
namespace detail {

BRAID_HD uint32_t FloatBits(float f) {
  uint32_t b;
  memcpy(&b, &f, sizeof b);
  return b;
}

BRAID_HD float BitsToFloat(uint32_t b) {
  float f;
  memcpy(&f, &b, sizeof f);
  return f;
}

// float32 scaled as cpu::ScaleLoop<float> does: the factor rounded to float32,
// one float32 multiply.
BRAID_HD float ScaleFloat(float x, double factor) {
  return static_cast<float>(factor) * x;
}

// IEEE binary16 -> binary32, exact (common/half.cc's HalfToFloat).
BRAID_HD float HalfBitsToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1fu) return BitsToFloat(sign | 0x7f800000u | (mantissa << 13));
  if (exponent != 0)
    return BitsToFloat(sign | ((((exponent << 10) | mantissa) << 13) + (112u << 23)));
  // Subnormal: mantissa * 2^-24 is exact in binary32.
  return BitsToFloat(sign | FloatBits(static_cast<float>(mantissa) * 0x1p-24f));
}

// Half subnormals (|f| < 2^-14) are multiples of 2^-24: round |f| / 2^-24 to the
// nearest integer, ties to even, in integer arithmetic (no float op that a flush
// to zero could touch). Results equal common/half.cc's FloatToHalf.
BRAID_HD uint16_t HalfSubnormalBits(uint32_t abs) {
  if (abs <= 0x33000000u) return 0;     // |f| <= 2^-25: zero (2^-25 itself ties to even 0)
  const uint32_t exponent = abs >> 23;  // 102 .. 112 here
  const uint32_t mantissa = (abs & 0x7fffffu) | 0x800000u;
  const uint32_t shift = 126u - exponent;  // |f| / 2^-24 = mantissa >> shift
  const uint32_t quotient = mantissa >> shift;
  const uint32_t rest = mantissa & ((1u << shift) - 1u);
  const uint32_t half = 1u << (shift - 1u);
  const bool up = rest > half || (rest == half && (quotient & 1u));
  return static_cast<uint16_t>(quotient + (up ? 1u : 0u));  // 0x400: smallest normal
}

// IEEE binary32 -> binary16, round to nearest even (common/half.cc's FloatToHalf).
BRAID_HD uint16_t FloatToHalfBits(float f) {
  const uint32_t bits = FloatBits(f);
  const uint16_t sign = static_cast<uint16_t>((bits & 0x80000000u) >> 16);
  const uint32_t abs = bits & 0x7fffffffu;
  if (abs >= 0x7f800000u) {
    if (abs == 0x7f800000u) return sign | 0x7c00u;
    return static_cast<uint16_t>(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));  // quiet NaN
  }
  if (abs >= 0x477ff000u) return sign | 0x7c00u;  // rounds past 65504: infinity
  if (abs < 0x38800000u) return static_cast<uint16_t>(sign | HalfSubnormalBits(abs));
  const uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
  return static_cast<uint16_t>(sign | ((rounded - (112u << 23)) >> 13));
}

BRAID_HD float BFloat16BitsToFloat(uint16_t h) {
  return BitsToFloat(static_cast<uint32_t>(h) << 16);
}

// Round to nearest even; NaN stays NaN with the quiet bit set (common/half.h).
BRAID_HD uint16_t FloatToBFloat16Bits(float f) {
  const uint32_t bits = FloatBits(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  return static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

// Element types: Storage is what sits in memory.
template <class T, int64_t kMin, int64_t kMax>
struct IntegerElement {
  using Storage = T;
  // Clamped before the conversion, which is undefined out of range. The top is
  // compared with kMax + 1, a power of two and so exact in double (kMax itself is
  // not for int64: it rounds up to 2^63).
  static BRAID_HD T Scale(T x, double factor) {
    constexpr double lo = static_cast<double>(kMin);
    constexpr double above = 2.0 * static_cast<double>(kMax / 2 + 1);
    double v = static_cast<double>(x) * factor;
    v = v < lo ? lo : v;
    return v >= above ? static_cast<T>(kMax) : static_cast<T>(v);
  }
  static BRAID_HD T Divide(T x, int64_t divisor, double /*inverse*/) {
    if constexpr (sizeof(T) == 8) {
      return static_cast<T>(x / divisor);  // beyond 2^53 a double quotient is inexact
    } else {
      return static_cast<T>(static_cast<double>(x) / static_cast<double>(divisor));
    }
  }
};

using UInt8Element = IntegerElement<uint8_t, 0, UINT8_MAX>;
using Int8Element = IntegerElement<int8_t, INT8_MIN, INT8_MAX>;
using Int16Element = IntegerElement<int16_t, INT16_MIN, INT16_MAX>;
using Int32Element = IntegerElement<int32_t, INT32_MIN, INT32_MAX>;
using Int64Element = IntegerElement<int64_t, INT64_MIN, INT64_MAX>;

struct Float32Element {
  using Storage = float;
  static BRAID_HD float Scale(float x, double factor) { return ScaleFloat(x, factor); }
  static BRAID_HD float Divide(float x, int64_t, double inverse) { return Scale(x, inverse); }
};

struct Float64Element {
  using Storage = double;
  static BRAID_HD double Scale(double x, double factor) { return x * factor; }
  static BRAID_HD double Divide(double x, int64_t, double inverse) { return x * inverse; }
};

struct HalfFormat {
  static BRAID_HD float ToFloat(uint16_t h) { return HalfBitsToFloat(h); }
  static BRAID_HD uint16_t FromFloat(float f) { return FloatToHalfBits(f); }
};

struct BFloat16Format {
  static BRAID_HD float ToFloat(uint16_t h) { return BFloat16BitsToFloat(h); }
  static BRAID_HD uint16_t FromFloat(float f) { return FloatToBFloat16Bits(f); }
};

// float16 / bfloat16: widened to float32, scaled there, narrowed (cpu::ScaleHalf).
template <class Format>
struct SixteenBitElement {
  using Storage = uint16_t;
  static BRAID_HD uint16_t Scale(uint16_t x, double factor) {
    return Format::FromFloat(ScaleFloat(Format::ToFloat(x), factor));
  }
  static BRAID_HD uint16_t Divide(uint16_t x, int64_t, double inverse) { return Scale(x, inverse); }
};

using Float16Element = SixteenBitElement<HalfFormat>;
using BFloat16Element = SixteenBitElement<BFloat16Format>;

// What one launch does to each element: the host path's ScaleCopy, then DivideBy.
struct ElementScaling {
  double factor = 1.0;
  double inverse_divisor = 1.0;  // 1.0 / divisor, as cpu::DivideBy computes it
  int64_t divisor = 1;
  bool apply_factor = false;  // factor != 1 (ScaleCopy's factor 1 is a plain copy)
};

template <class Element>
BRAID_HD typename Element::Storage ApplyScaling(typename Element::Storage x,
                                                const ElementScaling& s) {
  if (s.apply_factor) x = Element::Scale(x, s.factor);
  if (s.divisor > 1) x = Element::Divide(x, s.divisor, s.inverse_divisor);
  return x;
}

}  // namespace detail
}  // namespace cuda
}  // namespace braid
