#include "dtype.h"

namespace bench {
namespace {

// Tolerances only matter for average (a multiplication by 1/n); sums, minima,
// maxima and products of the small integers the checks use are exact.
const DType kDTypes[] = {
    {"float32", BRAID_FLOAT32, 4, true, 1e-6}, {"float64", BRAID_FLOAT64, 8, true, 1e-12},
    {"float16", BRAID_FLOAT16, 2, true, 1e-3}, {"bfloat16", BRAID_BFLOAT16, 2, true, 1e-2},
    {"int32", BRAID_INT32, 4, false, 0},       {"int64", BRAID_INT64, 8, false, 0},
    {"int8", BRAID_INT8, 1, false, 0},         {"uint8", BRAID_UINT8, 1, false, 0},
};

struct Alias {
  const char* alias;
  const char* name;
};
const Alias kAliases[] = {
    {"float", "float32"}, {"f32", "float32"}, {"double", "float64"}, {"f64", "float64"},
    {"half", "float16"},  {"f16", "float16"}, {"bf16", "bfloat16"},  {"int", "int32"},
    {"i32", "int32"},     {"i64", "int64"},   {"i8", "int8"},        {"u8", "uint8"},
    {"char", "int8"},     {"uchar", "uint8"},
};

uint32_t Bits(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof(x));
  return x;
}

float FromBits(uint32_t x) {
  float f;
  std::memcpy(&f, &x, sizeof(f));
  return f;
}

// Rounds `value` right-shifted by `shift` to nearest, ties to even.
uint32_t ShiftRoundEven(uint32_t value, int shift) {
  const uint32_t kept = value >> shift;
  const uint32_t rest = value & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  return kept + ((rest > half || (rest == half && (kept & 1))) ? 1 : 0);
}

}  // namespace

const DType* FindDType(const std::string& name) {
  std::string key = name;
  for (const Alias& a : kAliases) {
    if (key == a.alias) key = a.name;
  }
  for (const DType& d : kDTypes) {
    if (key == d.name) return &d;
  }
  return nullptr;
}

const char* DTypeNames() {
  return "float32 (float), float64 (double), float16 (half), bfloat16 (bf16), int32, int64, "
         "int8, uint8";
}

uint16_t FloatToHalf(float f) {
  const uint32_t x = Bits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const int exp = static_cast<int>((x >> 23) & 0xff);
  uint32_t mant = x & 0x7fffff;
  if (exp == 0xff) return sign | 0x7c00 | (mant != 0 ? 0x200 : 0);
  const int e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {  // subnormal half (or zero)
    if (e < -10) return sign;
    mant |= 0x800000;
    return sign | static_cast<uint16_t>(ShiftRoundEven(mant, 14 - e));
  }
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  const uint32_t h = (static_cast<uint32_t>(e) << 10) + ShiftRoundEven(mant, 13);
  return sign | static_cast<uint16_t>(h);
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  if (exp == 0x1f) return FromBits(sign | 0x7f800000 | (mant << 13));
  if (exp != 0) return FromBits(sign | ((exp + 112) << 23) | (mant << 13));
  if (mant == 0) return FromBits(sign);
  int shifts = 0;  // normalise the subnormal
  while ((mant & 0x400) == 0) {
    mant <<= 1;
    ++shifts;
  }
  const uint32_t e = static_cast<uint32_t>(127 - 15 + 1 - shifts);
  return FromBits(sign | (e << 23) | ((mant & 0x3ff) << 13));
}

uint16_t FloatToBFloat16(float f) {
  const uint32_t x = Bits(f);
  if ((x & 0x7fffffff) > 0x7f800000) return static_cast<uint16_t>((x >> 16) | 0x40);  // NaN
  return static_cast<uint16_t>((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

float BFloat16ToFloat(uint16_t h) {
  return FromBits(static_cast<uint32_t>(h) << 16);
}

}  // namespace bench
