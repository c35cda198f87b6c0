// float16 / bfloat16 conversions: exhaustive round trips, round to nearest even
// (against a reference that picks the nearest representable value in double),
// subnormals, infinities and NaN.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "common/half.h"

namespace braid {
namespace {

float Bits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

bool IsHalfNan(uint16_t h) {
  return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0;
}
bool IsBFloat16Nan(uint16_t h) {
  return (h & 0x7f80u) == 0x7f80u && (h & 0x7fu) != 0;
}

// Nearest half to |x| by binary search over the monotone positive encodings, ties
// to the even encoding; beyond the largest finite half the rule of IEEE 754
// applies: values >= 65520 (the would-be midpoint to 2^16) become infinity.
uint16_t ReferenceFloatToHalf(float f) {
  const double x = std::fabs(static_cast<double>(f));
  const uint16_t sign = std::signbit(f) ? 0x8000u : 0;
  if (x >= 65520.0) return sign | 0x7c00u;
  uint16_t lo = 0, hi = 0x7bff;
  while (lo < hi) {  // first encoding whose value is >= x
    uint16_t mid = static_cast<uint16_t>((lo + hi) / 2);
    if (static_cast<double>(HalfToFloat(mid)) < x)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == 0) return sign;
  const double above = HalfToFloat(lo), below = HalfToFloat(lo - 1);
  if (above - x < x - below) return sign | lo;
  if (x - below < above - x) return sign | static_cast<uint16_t>(lo - 1);
  return sign | ((lo & 1u) ? static_cast<uint16_t>(lo - 1) : lo);
}

TEST(HalfTest, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h <= 0xffffu; ++h) {
    const uint16_t half = static_cast<uint16_t>(h);
    const float f = HalfToFloat(half);
    if (IsHalfNan(half)) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << h;
      ASSERT_TRUE(IsHalfNan(FloatToHalf(f))) << std::hex << h;
      ASSERT_EQ(std::signbit(f), (h & 0x8000u) != 0);
    } else {
      ASSERT_EQ(FloatToHalf(f), half) << std::hex << h;
    }
  }
}

TEST(HalfTest, KnownValues) {
  EXPECT_EQ(FloatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(FloatToHalf(0.0f), 0x0000);
  EXPECT_EQ(FloatToHalf(-0.0f), 0x8000);
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7bff);
  EXPECT_EQ(HalfToFloat(0x7bff), 65504.0f);
  EXPECT_EQ(HalfToFloat(0x3555), 0.333251953125f);
  EXPECT_EQ(HalfToFloat(0x0400), std::ldexp(1.0f, -14));  // smallest normal
}

TEST(HalfTest, RoundsToNearestEven) {
  const float ulp = std::ldexp(1.0f, -10);             // at 1.0
  EXPECT_EQ(FloatToHalf(1.0f + ulp / 2), 0x3c00);      // tie, even below
  EXPECT_EQ(FloatToHalf(1.0f + 3 * ulp / 2), 0x3c02);  // tie, even above
  EXPECT_EQ(FloatToHalf(std::nextafter(1.0f + ulp / 2, 2.0f)), 0x3c01);
  EXPECT_EQ(FloatToHalf(std::nextafter(1.0f + ulp / 2, 0.0f)), 0x3c00);
  EXPECT_EQ(FloatToHalf(-(1.0f + 3 * ulp / 2)), 0xbc02);
  // The largest finite half rounds up into the exponent's overflow: infinity.
  EXPECT_EQ(FloatToHalf(65519.0f), 0x7bff);
  EXPECT_EQ(FloatToHalf(65520.0f), 0x7c00);
  EXPECT_EQ(FloatToHalf(-70000.0f), 0xfc00);
  // A mantissa carry into the exponent: just below 2 rounds to 2.
  EXPECT_EQ(FloatToHalf(std::nextafter(2.0f, 0.0f)), 0x4000);
}

TEST(HalfTest, Subnormals) {
  const float tiny = std::ldexp(1.0f, -24);  // smallest subnormal half
  EXPECT_EQ(HalfToFloat(0x0001), tiny);
  EXPECT_EQ(HalfToFloat(0x8001), -tiny);
  EXPECT_EQ(HalfToFloat(0x03ff), 1023 * tiny);
  EXPECT_EQ(FloatToHalf(tiny), 0x0001);
  EXPECT_EQ(FloatToHalf(tiny / 2), 0x0000);      // tie, even below
  EXPECT_EQ(FloatToHalf(3 * tiny / 2), 0x0002);  // tie, even above
  EXPECT_EQ(FloatToHalf(std::nextafter(tiny / 2, 1.0f)), 0x0001);
  EXPECT_EQ(FloatToHalf(tiny / 4), 0x0000);
  EXPECT_EQ(FloatToHalf(-tiny / 4), 0x8000);
  EXPECT_EQ(FloatToHalf(1023.5f * tiny), 0x0400);  // tie rounds up to the smallest normal
  EXPECT_EQ(FloatToHalf(std::numeric_limits<float>::denorm_min()), 0x0000);
}

TEST(HalfTest, InfinityAndNan) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(FloatToHalf(inf), 0x7c00);
  EXPECT_EQ(FloatToHalf(-inf), 0xfc00);
  EXPECT_EQ(HalfToFloat(0x7c00), inf);
  EXPECT_EQ(HalfToFloat(0xfc00), -inf);
  EXPECT_TRUE(IsHalfNan(FloatToHalf(std::numeric_limits<float>::quiet_NaN())));
  // A NaN whose payload sits only in the bits a half drops must stay NaN.
  EXPECT_TRUE(IsHalfNan(FloatToHalf(Bits(0x7f800001u))));
  EXPECT_EQ(FloatToHalf(Bits(0xff800001u)) & 0x8000u, 0x8000u);
  EXPECT_TRUE(std::isnan(HalfToFloat(0x7e00)));
  EXPECT_TRUE(std::isnan(HalfToFloat(0x7c01)));
}

TEST(HalfTest, MatchesReferenceOnRandomFloats) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> bits_in_range(0x33000000u, 0x47800000u);
  for (int i = 0; i < 200000; ++i) {
    uint32_t b = bits_in_range(rng) | ((i & 1) ? 0x80000000u : 0);
    const float f = Bits(b);
    ASSERT_EQ(FloatToHalf(f), ReferenceFloatToHalf(f)) << std::hexfloat << f;
  }
}

TEST(BFloat16Test, EveryBFloat16RoundTrips) {
  for (uint32_t h = 0; h <= 0xffffu; ++h) {
    const uint16_t b = static_cast<uint16_t>(h);
    const float f = BFloat16ToFloat(b);
    if (IsBFloat16Nan(b)) {
      ASSERT_TRUE(std::isnan(f));
      ASSERT_TRUE(IsBFloat16Nan(FloatToBFloat16(f)));
    } else {
      ASSERT_EQ(FloatToBFloat16(f), b) << std::hex << h;
    }
  }
}

TEST(BFloat16Test, RoundsToNearestEven) {
  const float ulp = std::ldexp(1.0f, -7);  // at 1.0
  EXPECT_EQ(FloatToBFloat16(1.0f), 0x3f80);
  EXPECT_EQ(FloatToBFloat16(1.0f + ulp / 2), 0x3f80);
  EXPECT_EQ(FloatToBFloat16(1.0f + 3 * ulp / 2), 0x3f82);
  EXPECT_EQ(FloatToBFloat16(std::nextafter(1.0f + ulp / 2, 2.0f)), 0x3f81);
  EXPECT_EQ(FloatToBFloat16(-(1.0f + 3 * ulp / 2)), 0xbf82);
  EXPECT_EQ(FloatToBFloat16(std::numeric_limits<float>::max()), 0x7f80);  // overflows
}

TEST(BFloat16Test, SubnormalsInfinityAndNan) {
  const float sub = std::ldexp(1.0f, -133);  // a float32 subnormal, exact in bfloat16
  EXPECT_EQ(BFloat16ToFloat(FloatToBFloat16(sub)), sub);
  EXPECT_EQ(FloatToBFloat16(std::numeric_limits<float>::denorm_min()), 0x0000);
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(FloatToBFloat16(inf), 0x7f80);
  EXPECT_EQ(FloatToBFloat16(-inf), 0xff80);
  EXPECT_EQ(BFloat16ToFloat(0xff80), -inf);
  EXPECT_TRUE(IsBFloat16Nan(FloatToBFloat16(Bits(0x7f800001u))));
  EXPECT_TRUE(std::isnan(BFloat16ToFloat(0x7fc0)));
}

}  // namespace
}  // namespace braid
