// IEEE 754 binary16 <-> binary32 on the host. binary16: 1 sign bit, 5 exponent bits
// (bias 15), 10 mantissa bits; binary32: 8 exponent bits (bias 127), 23 mantissa
// bits. The exponent rebias is therefore 127 - 15 = 112 and the mantissa shift 13.
#include "common/half.h"

namespace braid {
namespace {

constexpr uint32_t kF32SignMask = 0x80000000u;
constexpr uint32_t kF32AbsMask = 0x7fffffffu;
constexpr uint32_t kF32Inf = 0x7f800000u;
constexpr uint32_t kRebias = 112u << 23;
constexpr int kMantissaShift = 13;

// 65520 is halfway between the largest finite half (65504) and 2^16; ties go to
// the even neighbour, which is 2^16, i.e. infinity.
constexpr uint32_t kF32HalfOverflow = 0x477ff000u;
// 2^-14, the smallest normal half.
constexpr uint32_t kF32HalfMinNormal = 0x38800000u;
// 0.5f: its unit in the last place is 2^-24, the spacing of half subnormals.
constexpr uint32_t kF32OneHalf = 0x3f000000u;

uint32_t Bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

float FromBits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

}  // namespace

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1fu) {
    // Infinity, or NaN with its payload (and so its quiet bit) kept.
    return FromBits(sign | kF32Inf | (mantissa << kMantissaShift));
  }
  if (exponent != 0) {
    return FromBits(sign | ((((exponent << 10) | mantissa) << kMantissaShift) + kRebias));
  }
  // Zero or subnormal: mantissa * 2^-24 is exact in binary32.
  const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
  return FromBits(sign | Bits(magnitude));
}

uint16_t FloatToHalf(float f) {
  const uint32_t bits = Bits(f);
  const uint16_t sign = static_cast<uint16_t>((bits & kF32SignMask) >> 16);
  const uint32_t abs = bits & kF32AbsMask;
  if (abs >= kF32Inf) {
    if (abs == kF32Inf) return sign | 0x7c00u;
    // NaN: keep the top payload bits and force the quiet bit so that a payload
    // living only in the dropped low bits still reads as NaN.
    return static_cast<uint16_t>(sign | 0x7e00u | ((abs >> kMantissaShift) & 0x3ffu));
  }
  if (abs >= kF32HalfOverflow) return sign | 0x7c00u;
  if (abs >= kF32HalfMinNormal) {
    // Round to nearest even on the 13 dropped bits; a mantissa carry correctly
    // bumps the exponent.
    const uint32_t lsb = (abs >> kMantissaShift) & 1u;
    const uint32_t rounded = abs + 0xfffu + lsb;
    return static_cast<uint16_t>(sign | ((rounded - kRebias) >> kMantissaShift));
  }
  // Subnormal or zero: adding 0.5 lets the FPU round |f| to a multiple of 2^-24
  // (nearest even); the low mantissa bits of the sum are then the half's mantissa.
  // A result of 0x400 is the smallest normal half, which is also correct.
  const float sum = FromBits(abs) + FromBits(kF32OneHalf);
  return static_cast<uint16_t>(sign | (Bits(sum) - kF32OneHalf));
}

}  // namespace braid
