// cpu::ScaleCopy against Horovod's definition of pre- and postscaling (its
// ScaleBuffer): `output = scale_factor * input` with the factor converted to float
// for float32 and float16 (float16 computed in float32, then rounded to nearest
// even), kept double for float64 and for the integers (an integer's double product
// converted back, truncating). bfloat16 follows float16. Where Horovod's integer
// conversion is undefined (out of range) braid saturates. Also int16 and bool.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "collectives/cpu/reduce.h"
#include "tests/unit/sixteen_bit_reference.h"

namespace braid {
namespace {

// Factors whose float32 rounding is inexact (0.1, 1/3, 0.7, 1e-3, 1/6) and exact
// ones; a large one that overflows float16 for large inputs.
const std::vector<double> kFactors = {0.1, 1.0 / 3, 0.7, 3.3, 1e-3, 1.0 / 6, 0.5, 2.0, 2.5e4};
constexpr int64_t kCount = 4099;  // odd, several of the kernels' blocks

TEST(CpuScaleHorovodTest, Float32MultipliesByTheFactorRoundedToFloat) {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<float> value(-1000.0f, 1000.0f);
  std::vector<float> x(kCount), out(kCount);
  for (float& v : x) v = value(rng);
  int64_t differs_from_double = 0;
  for (double f : kFactors) {
    cpu::ScaleCopy(out.data(), x.data(), kCount, DataType::kFloat32, f);
    const float factor = static_cast<float>(f);
    for (int64_t i = 0; i < kCount; ++i) {
      const float expected = factor * x[i];
      ASSERT_EQ(out[i], expected) << "factor " << f << " x " << x[i];
      differs_from_double += static_cast<float>(static_cast<double>(x[i]) * f) != expected;
    }
  }
  // The data tell the two arithmetics apart: scaling in double would fail above.
  EXPECT_GT(differs_from_double, 100);
}

TEST(CpuScaleHorovodTest, Float64MultipliesInDouble) {
  std::mt19937_64 rng(12);
  std::uniform_real_distribution<double> value(-1e6, 1e6);
  std::vector<double> x(kCount), out(kCount);
  for (double& v : x) v = value(rng);
  for (double f : kFactors) {
    cpu::ScaleCopy(out.data(), x.data(), kCount, DataType::kFloat64, f);
    for (int64_t i = 0; i < kCount; ++i) ASSERT_EQ(out[i], f * x[i]) << f;
  }
}

// 16-bit formats: float32(factor) * float32(x) in float32, then one rounding, for
// every finite encoding. Scaling through a double product instead differs only
// near rounding ties: for float16 in a few dozen encodings at factors 0.3 and 0.13
// (counted, so that the test is known to tell the two apart), for bfloat16 in none.
int64_t CheckSixteenBit(DataType dtype, const reference::SixteenBit& format,
                        double (*decode)(uint16_t), uint16_t infinity) {
  std::vector<uint16_t> x;
  for (uint32_t b = 0; b < infinity; ++b) {
    x.push_back(static_cast<uint16_t>(b));
    x.push_back(static_cast<uint16_t>(b | 0x8000));
  }
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<uint16_t> out(x.size());
  int64_t differs_from_double = 0;
  for (double f : {0.1, 1.0 / 3, 0.7, 3.3, 1e-3, 0.3, 0.13, 0.5, 2.5e4}) {
    cpu::ScaleCopy(out.data(), x.data(), n, dtype, f);
    for (int64_t i = 0; i < n; ++i) {
      const float product = static_cast<float>(f) * static_cast<float>(decode(x[i]));
      const double expected = reference::Round(format, product);
      EXPECT_EQ(decode(out[i]), expected)
          << DataTypeName(dtype) << " factor " << f << " x " << decode(x[i]);
      if (decode(out[i]) != expected) return -1;
      const float through_double = static_cast<float>(decode(x[i]) * f);
      differs_from_double += reference::Round(format, through_double) != expected;
    }
  }
  return differs_from_double;
}

TEST(CpuScaleHorovodTest, Float16ComputesInFloat32) {
  EXPECT_GT(
      CheckSixteenBit(DataType::kFloat16, reference::kFloat16, &reference::DecodeHalf, 0x7c00), 0);
}

TEST(CpuScaleHorovodTest, BFloat16ComputesInFloat32) {
  EXPECT_GE(CheckSixteenBit(DataType::kBFloat16, reference::kBFloat16, &reference::DecodeBFloat16,
                            0x7f80),
            0);
}

// In range, Horovod's expression itself: T(factor * double(x)), truncating.
template <class T>
void CheckInteger(DataType dtype) {
  std::mt19937_64 rng(14);
  std::vector<T> x(kCount), out(kCount);
  // Keep factor * x within T for factors up to 3.3 (the larger ones are skipped).
  const double limit = static_cast<double>(std::numeric_limits<T>::max()) / 4;
  std::uniform_real_distribution<double> value(std::is_signed<T>::value ? -limit : 0, limit);
  for (T& v : x) v = static_cast<T>(value(rng));
  for (double f : kFactors) {
    if (f > 4) continue;
    cpu::ScaleCopy(out.data(), x.data(), kCount, dtype, f);
    for (int64_t i = 0; i < kCount; ++i) {
      ASSERT_EQ(out[i], static_cast<T>(f * static_cast<double>(x[i])))
          << DataTypeName(dtype) << " factor " << f << " x " << +x[i];
    }
  }
}

TEST(CpuScaleHorovodTest, IntegersScaleInDoubleAndTruncate) {
  CheckInteger<uint8_t>(DataType::kUInt8);
  CheckInteger<int8_t>(DataType::kInt8);
  CheckInteger<int16_t>(DataType::kInt16);
  CheckInteger<int32_t>(DataType::kInt32);
  CheckInteger<int64_t>(DataType::kInt64);
}

TEST(CpuScaleHorovodTest, IntegersSaturateOutOfRange) {
  const int64_t big = int64_t{1} << 62;
  const int64_t max64 = std::numeric_limits<int64_t>::max();
  const int64_t min64 = std::numeric_limits<int64_t>::min();
  // 2^63 is the first double past INT64_MAX: converting it is undefined.
  std::vector<int64_t> x = {big, -big, big, -big, 3}, out(x.size());
  cpu::ScaleCopy(out.data(), x.data(), 2, DataType::kInt64, 2.0);
  cpu::ScaleCopy(out.data() + 2, x.data() + 2, 3, DataType::kInt64, 2.5);
  EXPECT_EQ(out, (std::vector<int64_t>{max64, min64, max64, min64, 7}));
  std::vector<int16_t> s = {20000, -20000, 7}, s_out(3);
  cpu::ScaleCopy(s_out.data(), s.data(), 3, DataType::kInt16, 2.0);
  EXPECT_EQ(s_out, (std::vector<int16_t>{32767, -32768, 14}));
  std::vector<uint8_t> u = {200, 3}, u_out(2);
  cpu::ScaleCopy(u_out.data(), u.data(), 2, DataType::kUInt8, -1.0);
  EXPECT_EQ(u_out, (std::vector<uint8_t>{0, 0}));
}

TEST(CpuInt16Test, ReducesWrapsAndDivides) {
  std::vector<int16_t> a = {32767, -5, 7, 100}, b = {1, 9, -8, 3};
  cpu::ReduceInto(a.data(), b.data(), 4, DataType::kInt16, ReduceOp::kSum);
  EXPECT_EQ(a, (std::vector<int16_t>{-32768, 4, -1, 103}));  // the sum wraps, as MPI's
  cpu::ReduceInto(a.data(), b.data(), 4, DataType::kInt16, ReduceOp::kMax);
  EXPECT_EQ(a, (std::vector<int16_t>{1, 9, -1, 103}));
  cpu::ReduceInto(a.data(), b.data(), 4, DataType::kInt16, ReduceOp::kProduct);
  EXPECT_EQ(a, (std::vector<int16_t>{1, 81, 8, 309}));
  cpu::DivideBy(a.data(), 4, DataType::kInt16, 3);
  EXPECT_EQ(a, (std::vector<int16_t>{0, 27, 2, 103}));
  std::vector<int16_t> n = {-7};
  cpu::DivideBy(n.data(), 1, DataType::kInt16, 2);
  EXPECT_EQ(n[0], -3);  // toward zero
}

// bool: numpy's and torch's element-wise +, *, min and max on bools.
TEST(CpuBoolTest, ReductionsAreLogical) {
  const std::vector<uint8_t> a = {0, 0, 1, 1}, b = {0, 1, 0, 1};
  const std::vector<uint8_t> any = {0, 1, 1, 1}, all = {0, 0, 0, 1};
  for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kMax, ReduceOp::kMin, ReduceOp::kProduct}) {
    std::vector<uint8_t> d = a;
    cpu::ReduceInto(d.data(), b.data(), 4, DataType::kBool, op);
    const bool is_or = op == ReduceOp::kSum || op == ReduceOp::kMax;
    EXPECT_EQ(d, is_or ? any : all) << ReduceOpName(op);
  }
  std::vector<uint8_t> odd = {2, 0}, one = {1, 1};  // any non-zero byte is true
  cpu::ReduceInto(odd.data(), one.data(), 2, DataType::kBool, ReduceOp::kProduct);
  EXPECT_EQ(odd, (std::vector<uint8_t>{1, 0}));
  std::vector<uint8_t> s = {0, 1}, out(2);
  cpu::ScaleCopy(out.data(), s.data(), 2, DataType::kBool, 0.5);
  EXPECT_EQ(out, (std::vector<uint8_t>{0, 1}));
  cpu::ScaleCopy(out.data(), s.data(), 2, DataType::kBool, 0.0);
  EXPECT_EQ(out, (std::vector<uint8_t>{0, 0}));
}

}  // namespace
}  // namespace braid
