// Host kernels against plain references: every dtype x op of ReduceInto (integer
// sums and products wrap), float16 / bfloat16 results rounded correctly, and the
// scaling kernels.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "collectives/cpu/reduce.h"
#include "common/half.h"

namespace braid {
namespace {

// Odd, and longer than the 1024-element blocks of the 16-bit float kernels.
constexpr int64_t kCount = 2 * 1024 + 37;
constexpr ReduceOp kOps[] = {ReduceOp::kSum, ReduceOp::kMin, ReduceOp::kMax, ReduceOp::kProduct};

// Integers wrap: the arithmetic happens in the unsigned type.
template <class T, bool = std::is_integral<T>::value>
struct Wrapping {
  using type = T;
};
template <class T>
struct Wrapping<T, true> {
  using type = std::make_unsigned_t<T>;
};

template <class T>
T ReferenceOp(T a, T b, ReduceOp op) {
  using W = typename Wrapping<T>::type;
  switch (op) {
    case ReduceOp::kSum:
      return static_cast<T>(static_cast<W>(static_cast<W>(a) + static_cast<W>(b)));
    case ReduceOp::kProduct:
      return static_cast<T>(static_cast<W>(static_cast<W>(a) * static_cast<W>(b)));
    case ReduceOp::kMin:
      return std::min(a, b);
    case ReduceOp::kMax:
      return std::max(a, b);
    default:
      return a;
  }
}

template <class T>
std::vector<T> RandomValues(std::mt19937_64& rng) {
  std::vector<T> v(kCount);
  for (auto& x : v) {
    if constexpr (std::is_integral<T>::value) {
      x = static_cast<T>(rng());
    } else {
      x = static_cast<T>(std::uniform_real_distribution<double>(-100, 100)(rng));
    }
  }
  return v;
}

template <class T>
void CheckNative(DataType dtype) {
  std::mt19937_64 rng(11);
  for (ReduceOp op : kOps) {
    std::vector<T> dst = RandomValues<T>(rng), src = RandomValues<T>(rng);
    std::vector<T> expect(kCount);
    for (int64_t i = 0; i < kCount; ++i) expect[i] = ReferenceOp(dst[i], src[i], op);
    cpu::ReduceInto(dst.data(), src.data(), kCount, dtype, op);
    for (int64_t i = 0; i < kCount; ++i) {
      ASSERT_EQ(dst[i], expect[i]) << DataTypeName(dtype) << " " << ReduceOpName(op) << " @" << i;
    }
  }
}

TEST(CpuReduceTest, UInt8) {
  CheckNative<uint8_t>(DataType::kUInt8);
}
TEST(CpuReduceTest, Int8) {
  CheckNative<int8_t>(DataType::kInt8);
}
TEST(CpuReduceTest, Int32) {
  CheckNative<int32_t>(DataType::kInt32);
}
TEST(CpuReduceTest, Int64) {
  CheckNative<int64_t>(DataType::kInt64);
}
TEST(CpuReduceTest, Float32) {
  CheckNative<float>(DataType::kFloat32);
}
TEST(CpuReduceTest, Float64) {
  CheckNative<double>(DataType::kFloat64);
}

// The 16-bit formats, described for the reference: decoding, the largest finite
// encoding and where rounding overflows to infinity.
struct Format {
  DataType dtype;
  float (*decode)(uint16_t);
  uint16_t max_finite;
  double overflow;  // the would-be midpoint above max_finite
};
const Format kHalf{DataType::kFloat16, &HalfToFloat, 0x7bff, 65520.0};
const Format kBFloat{DataType::kBFloat16, &BFloat16ToFloat, 0x7f7f,
                     std::ldexp(2.0 - std::ldexp(1.0, -8), 127)};

// Correctly rounded (nearest, ties to even) encoding of x, found by binary search
// over the monotone positive encodings.
uint16_t RoundExact(const Format& f, double x) {
  const uint16_t sign = std::signbit(x) ? 0x8000u : 0;
  x = std::fabs(x);
  if (x >= f.overflow) return sign | static_cast<uint16_t>(f.max_finite + 1);
  uint16_t lo = 0, hi = f.max_finite;
  while (lo < hi) {
    uint16_t mid = static_cast<uint16_t>((lo + hi) / 2);
    if (static_cast<double>(f.decode(mid)) < x)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == 0) return sign;
  const double above = f.decode(lo), below = f.decode(lo - 1);
  if (above - x < x - below) return sign | lo;
  if (x - below < above - x) return sign | static_cast<uint16_t>(lo - 1);
  return sign | ((lo & 1u) ? static_cast<uint16_t>(lo - 1) : lo);
}

// Operands are exact in double and so are their sums and products (the
// exponent range drawn keeps them within 53 bits), so the reference rounds once.
void CheckSixteenBit(const Format& f, uint16_t lo_bits, uint16_t hi_bits) {
  std::mt19937_64 rng(5);
  std::uniform_int_distribution<int> pick(lo_bits, hi_bits);
  for (ReduceOp op : kOps) {
    std::vector<uint16_t> dst(kCount), src(kCount), expect(kCount);
    for (int64_t i = 0; i < kCount; ++i) {
      dst[i] = static_cast<uint16_t>(pick(rng) | ((rng() & 1) ? 0x8000 : 0));
      src[i] = static_cast<uint16_t>(pick(rng) | ((rng() & 1) ? 0x8000 : 0));
      const double a = f.decode(dst[i]), b = f.decode(src[i]);
      const double exact = ReferenceOp(a, b, op);
      expect[i] = (op == ReduceOp::kMin || op == ReduceOp::kMax) ? (exact == a ? dst[i] : src[i])
                                                                 : RoundExact(f, exact);
    }
    cpu::ReduceInto(dst.data(), src.data(), kCount, f.dtype, op);
    for (int64_t i = 0; i < kCount; ++i) {
      ASSERT_EQ(f.decode(dst[i]), f.decode(expect[i]))
          << DataTypeName(f.dtype) << " " << ReduceOpName(op) << " @" << i;
    }
  }
}

TEST(CpuReduceTest, Float16RoundsCorrectly) {
  CheckSixteenBit(kHalf, 0x0000, 0x7bff);
}
TEST(CpuReduceTest, BFloat16RoundsCorrectly) {
  CheckSixteenBit(kBFloat, 0x3780, 0x4780);
}

// Every pair of special values (NaN, infinities, signed zeros, a subnormal, a
// normal) in both operand positions, against the scalar semantics: min and max
// keep dst unless src is strictly smaller / larger, so NaN in dst stays.
void CheckSpecials(const Format& f, uint16_t (*encode)(float)) {
  const float inf = std::numeric_limits<float>::infinity();
  const float specials[] = {std::numeric_limits<float>::quiet_NaN(),
                            inf,
                            -inf,
                            0.0f,
                            -0.0f,
                            std::ldexp(1.0f, -20),
                            1.5f,
                            -2.0f,
                            3.0f};
  const int m = sizeof(specials) / sizeof(specials[0]);
  for (ReduceOp op : kOps) {
    std::vector<uint16_t> dst, src;
    for (float a : specials) {
      for (float b : specials) {
        dst.push_back(encode(a));
        src.push_back(encode(b));
      }
    }
    const std::vector<uint16_t> before = dst;
    cpu::ReduceInto(dst.data(), src.data(), m * m, f.dtype, op);  // 81: 80 fused + 1 tail
    for (int i = 0; i < m * m; ++i) {
      const float a = f.decode(before[i]), b = f.decode(src[i]);
      float want = a;
      switch (op) {
        case ReduceOp::kSum:
          want = a + b;
          break;
        case ReduceOp::kProduct:
          want = a * b;
          break;
        case ReduceOp::kMin:
          want = b < a ? b : a;
          break;
        default:
          want = a < b ? b : a;
          break;
      }
      const float got = f.decode(dst[i]);
      if (std::isnan(want)) {
        EXPECT_TRUE(std::isnan(got)) << ReduceOpName(op) << " " << a << ", " << b;
      } else {
        EXPECT_EQ(dst[i], encode(want)) << ReduceOpName(op) << " " << a << ", " << b;
      }
    }
  }
}

TEST(CpuReduceTest, Float16SpecialValues) {
  CheckSpecials(kHalf, &FloatToHalf);
}
TEST(CpuReduceTest, BFloat16SpecialValues) {
  CheckSpecials(kBFloat, &FloatToBFloat16);
}

TEST(CpuReduceTest, Float16SumOverflowsToInfinity) {
  std::vector<uint16_t> dst(9, 0x7bff), src(9, 0x7bff);  // 65504 + 65504
  cpu::ReduceInto(dst.data(), src.data(), 9, DataType::kFloat16, ReduceOp::kSum);
  for (uint16_t h : dst) EXPECT_EQ(h, 0x7c00);
}

TEST(CpuReduceTest, ZeroCountTouchesNothing) {
  cpu::ReduceInto(nullptr, nullptr, 0, DataType::kFloat32, ReduceOp::kSum);
  cpu::ScaleCopy(nullptr, nullptr, 0, DataType::kFloat16, 0.5);
  cpu::DivideBy(nullptr, 0, DataType::kInt32, 3);
}

TEST(CpuScaleTest, IntegersTruncateTowardZeroAndSaturate) {
  std::vector<int32_t> v = {7, -7, 1, -1, 0, std::numeric_limits<int32_t>::max()};
  std::vector<int32_t> out(v.size());
  cpu::ScaleCopy(out.data(), v.data(), v.size(), DataType::kInt32, 0.5);
  EXPECT_EQ(out, (std::vector<int32_t>{3, -3, 0, 0, 0, 1073741823}));
  std::vector<uint8_t> u = {200, 3};
  cpu::ScaleCopy(u.data(), u.data(), 2, DataType::kUInt8, 2.0);
  EXPECT_EQ(u, (std::vector<uint8_t>{255, 6}));
}

TEST(CpuScaleTest, FloatsAndSixteenBit) {
  std::vector<double> d = {1.0, -3.0, 0.25};
  cpu::ScaleCopy(d.data(), d.data(), 3, DataType::kFloat64, 1.0 / 3);
  EXPECT_DOUBLE_EQ(d[1], -1.0);
  std::vector<uint16_t> h(1500, FloatToHalf(3.0f)), hout(1500);
  cpu::ScaleCopy(hout.data(), h.data(), 1500, DataType::kFloat16, 0.5);
  for (uint16_t x : hout) ASSERT_EQ(HalfToFloat(x), 1.5f);
  std::vector<uint16_t> b(5, FloatToBFloat16(-6.0f));
  cpu::ScaleCopy(b.data(), b.data(), 5, DataType::kBFloat16, 0.25);
  for (uint16_t x : b) ASSERT_EQ(BFloat16ToFloat(x), -1.5f);
}

TEST(CpuScaleTest, FactorOneCopies) {
  std::vector<int64_t> src = {1, 2, 3}, dst(3, 0);
  cpu::ScaleCopy(dst.data(), src.data(), 3, DataType::kInt64, 1.0);
  EXPECT_EQ(dst, src);
}

TEST(CpuDivideTest, IntegersRoundTowardZero) {
  std::vector<int8_t> a = {7, -7, 127, -128};
  cpu::DivideBy(a.data(), 4, DataType::kInt8, 2);
  EXPECT_EQ(a, (std::vector<int8_t>{3, -3, 63, -64}));
  std::vector<int32_t> b = {-2147483647 - 1, 2147483647, 5};
  cpu::DivideBy(b.data(), 3, DataType::kInt32, 3);
  EXPECT_EQ(b, (std::vector<int32_t>{-715827882, 715827882, 1}));
  const int64_t big = (int64_t{1} << 62) + 1;
  std::vector<int64_t> c = {big, -big, 10};
  cpu::DivideBy(c.data(), 3, DataType::kInt64, 3);
  EXPECT_EQ(c, (std::vector<int64_t>{big / 3, -big / 3, 3}));
  std::vector<uint8_t> u = {255, 4};
  cpu::DivideBy(u.data(), 2, DataType::kUInt8, 4);
  EXPECT_EQ(u, (std::vector<uint8_t>{63, 1}));
}

TEST(CpuDivideTest, Floats) {
  std::vector<float> f = {3.0f, -1.0f};
  cpu::DivideBy(f.data(), 2, DataType::kFloat32, 2);
  EXPECT_EQ(f, (std::vector<float>{1.5f, -0.5f}));
  std::vector<uint16_t> h = {FloatToHalf(6.0f)};
  cpu::DivideBy(h.data(), 1, DataType::kFloat16, 4);
  EXPECT_EQ(HalfToFloat(h[0]), 1.5f);
}

}  // namespace
}  // namespace braid
