// float16 and bfloat16 written out for the tests from the IEEE definitions, apart
// from the library's conversions: decoding an encoding to its value, and rounding
// a value to the nearest representable one (ties to even), in double.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace braid {
namespace reference {

struct SixteenBit {
  int precision;      // significand bits, the implicit one included
  int min_exponent;   // exponent of the smallest normal number
  double max_finite;  // the largest finite value
};
inline constexpr SixteenBit kFloat16{11, -14, 65504.0};
inline const SixteenBit kBFloat16{8, -126, std::ldexp(255.0, 120)};

// binary16: sign, 5 exponent bits (bias 15), 10 fraction bits.
inline double DecodeHalf(uint16_t h) {
  const int exponent = (h >> 10) & 0x1f, fraction = h & 0x3ff;
  double v;
  if (exponent == 0x1f) {
    v = fraction ? std::numeric_limits<double>::quiet_NaN() : INFINITY;
  } else if (exponent == 0) {
    v = std::ldexp(fraction, -24);
  } else {
    v = std::ldexp(1024 + fraction, exponent - 25);
  }
  return (h & 0x8000) ? -v : v;
}

// bfloat16: the upper half of a binary32.
inline double DecodeBFloat16(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// x rounded to the format: q * 2^(e - precision + 1) with q an integer, e the
// exponent of x but not below the smallest normal's (subnormals have fixed
// spacing); beyond max_finite's rounding range, infinity.
inline double Round(const SixteenBit& format, double x) {
  if (x == 0 || std::isnan(x) || std::isinf(x)) return x;
  const double a = std::fabs(x);
  const int e = std::max(std::ilogb(a), format.min_exponent);
  const int shift = format.precision - 1 - e;
  const double r = std::ldexp(std::nearbyint(std::ldexp(a, shift)), -shift);
  const double rounded = r > format.max_finite ? INFINITY : r;
  return std::signbit(x) ? -rounded : rounded;
}

// The encoding of x, which must be representable: a binary search over the
// positive encodings [0, infinity_bits], whose values increase.
inline uint16_t Encode(double (*decode)(uint16_t), uint16_t infinity_bits, double x) {
  const double a = std::fabs(x);
  uint16_t lo = 0, hi = infinity_bits;
  while (lo < hi) {
    const uint16_t mid = static_cast<uint16_t>((lo + hi) / 2);
    if (decode(mid) < a) {
      lo = static_cast<uint16_t>(mid + 1);
    } else {
      hi = mid;
    }
  }
  return static_cast<uint16_t>(lo | (std::signbit(x) ? 0x8000 : 0));
}

}  // namespace reference
}  // namespace braid
