// The host's 16-bit reductions that round once (cpu::ReduceHalvesRounded,
// cpu::WidenHalf / NarrowHalf, which the MPI backend uses at three ranks or more
// and for averages): against a float64 reference that adds the contributions
// exactly and rounds once, and against what rounding at every hop gives.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "collectives/cpu/reduce.h"
#include "tests/unit/sixteen_bit_reference.h"

namespace braid {
namespace {

struct Format {
  DataType dtype;
  const reference::SixteenBit* format;
  double (*decode)(uint16_t);
  uint16_t infinity;  // the encoding of +infinity

  uint16_t Encode(double x) const { return reference::Encode(decode, infinity, x); }
};
const Format kFormats[] = {
    {DataType::kFloat16, &reference::kFloat16, &reference::DecodeHalf, 0x7c00},
    {DataType::kBFloat16, &reference::kBFloat16, &reference::DecodeBFloat16, 0x7f80},
};

// `m` + 1 contributions of `count` values with exponents in [2^-4, 2^7): every
// partial sum is a multiple of the smallest value's unit below 2^9, which float32
// holds exactly, so the float32 sum is the exact sum and one rounding follows.
std::vector<std::vector<uint16_t>> Contributions(const Format& f, int m, int64_t count) {
  std::mt19937_64 rng(21 + m);
  const int precision = f.format->precision;
  std::uniform_int_distribution<int> exponent(-4, 6);
  std::uniform_int_distribution<int> significand(1 << (precision - 1), (1 << precision) - 1);
  std::vector<std::vector<uint16_t>> c(m + 1, std::vector<uint16_t>(count));
  for (auto& values : c) {
    for (auto& v : values) {
      const double x = std::ldexp(significand(rng), exponent(rng) - precision + 1);
      v = f.Encode((rng() & 1) ? -x : x);
    }
  }
  return c;
}

TEST(CpuRoundOnceTest, SumIsTheExactSumRoundedOnce) {
  constexpr int64_t kCount = 1500;  // more than one 1024-element block
  for (const Format& f : kFormats) {
    for (int m : {1, 2, 3}) {
      auto c = Contributions(f, m, kCount);
      std::vector<const void*> others;
      for (int j = 1; j <= m; ++j) others.push_back(c[j].data());
      std::vector<uint16_t> result = c[0];
      cpu::ReduceHalvesRounded(result.data(), others.data(), m, kCount, f.dtype, ReduceOp::kSum);
      for (int64_t i = 0; i < kCount; ++i) {
        double exact = 0;
        for (int j = 0; j <= m; ++j) exact += f.decode(c[j][i]);
        ASSERT_EQ(f.decode(result[i]), reference::Round(*f.format, exact))
            << DataTypeName(f.dtype) << " m " << m << " @" << i;
      }
    }
  }
}

// An average: the float32 sum times float32(1/n), then one rounding.
TEST(CpuRoundOnceTest, AverageScalesBeforeRounding) {
  constexpr int64_t kCount = 700;
  for (const Format& f : kFormats) {
    for (int m : {1, 2, 3}) {
      auto c = Contributions(f, m, kCount);
      std::vector<const void*> others;
      for (int j = 1; j <= m; ++j) others.push_back(c[j].data());
      std::vector<uint16_t> result = c[0];
      const float scale = static_cast<float>(1.0 / (m + 1));
      cpu::ReduceHalvesRounded(result.data(), others.data(), m, kCount, f.dtype, ReduceOp::kSum,
                               scale);
      for (int64_t i = 0; i < kCount; ++i) {
        double exact = 0;
        for (int j = 0; j <= m; ++j) exact += f.decode(c[j][i]);
        const float scaled = static_cast<float>(exact) * scale;  // exact is a float here
        ASSERT_EQ(f.decode(result[i]), reference::Round(*f.format, scaled))
            << DataTypeName(f.dtype) << " m " << m << " @" << i;
      }
    }
  }
}

// 1 plus three values below half a unit in the last place of 1: rounding after
// every addition drops each of them; one rounding of the whole sum does not.
TEST(CpuRoundOnceTest, SmallAddendsSurviveWhereHopByHopRoundingLosesThem) {
  for (const Format& f : kFormats) {
    const double unit = std::ldexp(1.0, 1 - f.format->precision);  // ulp(1)
    const double small = 0.375 * unit;
    std::vector<uint16_t> hop_by_hop(9, f.Encode(1.0)), once = hop_by_hop;
    std::vector<uint16_t> addend(9, f.Encode(small));
    const void* others[] = {addend.data(), addend.data(), addend.data()};
    cpu::ReduceHalvesRounded(once.data(), others, 3, 9, f.dtype, ReduceOp::kSum);
    for (int hop = 0; hop < 3; ++hop) {
      cpu::ReduceInto(hop_by_hop.data(), addend.data(), 9, f.dtype, ReduceOp::kSum);
    }
    const double expected = reference::Round(*f.format, 1.0 + 3 * small);
    EXPECT_EQ(expected, 1.0 + unit) << DataTypeName(f.dtype);
    for (int i = 0; i < 9; ++i) {
      EXPECT_EQ(f.decode(once[i]), expected) << DataTypeName(f.dtype);
      EXPECT_EQ(f.decode(hop_by_hop[i]), 1.0) << DataTypeName(f.dtype);
    }
  }
}

// Four float16 60000s: a float16 partial sum is infinite, the float32 one is not.
TEST(CpuRoundOnceTest, AverageNearTheFloat16MaximumStaysFinite) {
  const uint16_t k60000 = 0x7b53;
  ASSERT_EQ(reference::DecodeHalf(k60000), 60000.0);
  std::vector<uint16_t> mine(5, k60000), other(5, k60000);
  const void* others[] = {other.data(), other.data(), other.data()};
  cpu::ReduceHalvesRounded(mine.data(), others, 3, 5, DataType::kFloat16, ReduceOp::kSum, 0.25f);
  for (uint16_t v : mine) EXPECT_EQ(reference::DecodeHalf(v), 60000.0);
  std::vector<float> wide = {240000.0f, 160000.0f, 1.0f};
  std::vector<uint16_t> narrow(3);
  cpu::NarrowHalf(narrow.data(), wide.data(), 3, DataType::kFloat16, 0.25f);
  EXPECT_EQ(reference::DecodeHalf(narrow[0]), 60000.0);
  EXPECT_EQ(reference::DecodeHalf(narrow[1]), 40000.0);
  EXPECT_EQ(reference::DecodeHalf(narrow[2]), 0.25);
  cpu::NarrowHalf(narrow.data(), wide.data(), 1, DataType::kFloat16);
  EXPECT_TRUE(std::isinf(reference::DecodeHalf(narrow[0])));
}

TEST(CpuRoundOnceTest, WidenIsExactAndProductsRoundOnce) {
  for (const Format& f : kFormats) {
    auto c = Contributions(f, 2, 300);
    std::vector<float> wide(300);
    cpu::WidenHalf(wide.data(), c[0].data(), 300, f.dtype);
    for (int i = 0; i < 300; ++i) ASSERT_EQ(wide[i], f.decode(c[0][i]));
    // Small values whose products are exact in float32 and representable.
    std::vector<uint16_t> a(3), b(3), d(3);
    const double va[] = {3, -5, 0.75}, vb[] = {7, 3, -6}, vd[] = {11, 0.5, 1.25};
    for (int i = 0; i < 3; ++i)
      a[i] = f.Encode(va[i]), b[i] = f.Encode(vb[i]), d[i] = f.Encode(vd[i]);
    const void* others[] = {b.data(), d.data()};
    cpu::ReduceHalvesRounded(a.data(), others, 2, 3, f.dtype, ReduceOp::kProduct);
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(f.decode(a[i]), reference::Round(*f.format, va[i] * vb[i] * vd[i]));
    }
  }
}

}  // namespace
}  // namespace braid
