// cpu::Mix, the neighbour collectives' mixing pass, against the formula of
// collectives/cpu/mix.h written out here element by element: the self term, then
// the neighbours in order, every product and sum rounded on its own (float64 in
// double, the others in float with the weights rounded to float once, the 16-bit
// formats rounded once at the end by the IEEE definition, not the library's
// conversions). Bit for bit, for every dtype, count, neighbour count, in place and
// out of place; then NaN and infinity, and the arguments it refuses.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "collectives/cpu/mix.h"
#include "common/half.h"
#include "tests/unit/sixteen_bit_reference.h"

namespace braid {
namespace {

constexpr DataType kMixDtypes[] = {DataType::kFloat16, DataType::kBFloat16, DataType::kFloat32,
                                   DataType::kFloat64};

// A value rounded to its type: the volatile keeps the compiler from contracting a
// product into the following sum (one rounding instead of two).
template <typename T>
T Rounded(T x) {
  volatile T v = x;
  return v;
}

// One tensor of `dtype` as raw bytes, with exact reads and rounding writes.
class Tensor {
 public:
  Tensor(DataType dtype, int64_t count)
      : dtype_(dtype), bytes_(static_cast<size_t>(count) * DataTypeSize(dtype) + 8) {}
  void* data() { return bytes_.data(); }
  const void* data() const { return bytes_.data(); }

  double Get(int64_t i) const {
    switch (dtype_) {
      case DataType::kFloat16:
        return reference::DecodeHalf(Raw<uint16_t>(i));
      case DataType::kBFloat16:
        return reference::DecodeBFloat16(Raw<uint16_t>(i));
      case DataType::kFloat32:
        return Raw<float>(i);
      default:
        return Raw<double>(i);
    }
  }
  void Set(int64_t i, double v) {
    switch (dtype_) {
      case DataType::kFloat16:
        return Put(i, FloatToHalf(static_cast<float>(v)));
      case DataType::kBFloat16:
        return Put(i, FloatToBFloat16(static_cast<float>(v)));
      case DataType::kFloat32:
        return Put(i, static_cast<float>(v));
      default:
        return Put(i, v);
    }
  }
  // The element's encoding, for bitwise comparison.
  uint64_t Bits(int64_t i) const {
    uint64_t bits = 0;
    const size_t width = DataTypeSize(dtype_);
    std::memcpy(&bits, bytes_.data() + i * width, width);
    return bits;
  }

 private:
  template <typename T>
  T Raw(int64_t i) const {
    T v;
    std::memcpy(&v, bytes_.data() + i * sizeof(T), sizeof(T));
    return v;
  }
  template <typename T>
  void Put(int64_t i, T v) {
    std::memcpy(bytes_.data() + i * sizeof(T), &v, sizeof(T));
  }

  DataType dtype_;
  std::vector<unsigned char> bytes_;
};

// The encoding of a float accumulator rounded once to `dtype`.
uint64_t EncodeFloat(DataType dtype, float acc) {
  if (dtype == DataType::kFloat16) {
    return reference::Encode(reference::DecodeHalf, 0x7c00,
                             reference::Round(reference::kFloat16, acc));
  }
  if (dtype == DataType::kBFloat16) {
    return reference::Encode(reference::DecodeBFloat16, 0x7f80,
                             reference::Round(reference::kBFloat16, acc));
  }
  uint32_t bits;
  std::memcpy(&bits, &acc, sizeof bits);
  return bits;
}

// out[e] = self_weight * self[e] + sum over k of weights[k] * neighbours[k][e].
uint64_t ExpectedBits(DataType dtype, double self_weight, const Tensor& self,
                      const std::vector<double>& weights, const std::vector<Tensor>& neighbours,
                      int64_t e) {
  if (dtype == DataType::kFloat64) {
    double acc = Rounded(self_weight * self.Get(e));
    for (size_t k = 0; k < weights.size(); ++k)
      acc = Rounded(acc + Rounded(weights[k] * neighbours[k].Get(e)));
    uint64_t bits;
    std::memcpy(&bits, &acc, sizeof bits);
    return bits;
  }
  float acc = Rounded(static_cast<float>(self_weight) * static_cast<float>(self.Get(e)));
  for (size_t k = 0; k < weights.size(); ++k) {
    const float product =
        Rounded(static_cast<float>(weights[k]) * static_cast<float>(neighbours[k].Get(e)));
    acc = Rounded(acc + product);
  }
  return EncodeFloat(dtype, acc);
}

// Moderate values of both signs, with subnormals of the tensor's format now and
// then, and (16-bit formats) values large enough that some sums round to infinity.
void Fill(Tensor* t, DataType dtype, int64_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> value(-8.0, 8.0);
  const double tiny = dtype == DataType::kFloat16 ? 1e-6 : 1e-40;
  for (int64_t i = 0; i < count; ++i) {
    double v = value(rng);
    if (i % 97 == 5) v *= tiny;
    if (i % 101 == 7 && dtype == DataType::kFloat16) v *= 8000.0;
    t->Set(i, v);
  }
}

// Runs one mix and returns how many elements differ from the formula (reports the first).
int64_t CheckMix(DataType dtype, int64_t count, int num_neighbours, bool in_place) {
  const double self_weight = 0.3 + 0.1 * num_neighbours;
  std::vector<double> weights;
  std::vector<Tensor> neighbours;
  for (int k = 0; k < num_neighbours; ++k) {
    weights.push_back(k == 1 ? -0.7 : 1.0 / (k + 3));
    neighbours.emplace_back(dtype, count);
    Fill(&neighbours.back(), dtype, count, 100 + k);
  }
  Tensor self(dtype, count), out(dtype, count);
  Fill(&self, dtype, count, 7);
  MixArgs args;
  if (in_place) std::memcpy(out.data(), self.data(), count * DataTypeSize(dtype));
  args.out = out.data();
  args.self = in_place ? out.data() : self.data();
  args.self_weight = self_weight;
  for (const Tensor& n : neighbours) args.neighbours.push_back(n.data());
  args.weights = weights;
  args.count = count;
  args.dtype = dtype;
  const Status st = cpu::Mix(args);
  EXPECT_TRUE(st.ok()) << st.ToString();
  int64_t wrong = 0;
  for (int64_t e = 0; e < count; ++e) {
    const uint64_t want = ExpectedBits(dtype, self_weight, self, weights, neighbours, e);
    if (out.Bits(e) == want) continue;
    if (wrong++ == 0) {
      ADD_FAILURE() << DataTypeName(dtype) << " count " << count << " neighbours " << num_neighbours
                    << (in_place ? " in place" : "") << " @" << e << ": got 0x" << std::hex
                    << out.Bits(e) << " want 0x" << want;
    }
  }
  return wrong;
}

TEST(CpuMixTest, MatchesTheFormulaBitForBit) {
  // 4099 and 10007: primes across the 4096-element blocks; 299993: a large prime.
  for (DataType dtype : kMixDtypes) {
    for (int64_t count : {int64_t{0}, int64_t{1}, int64_t{2}, int64_t{7}, int64_t{4096},
                          int64_t{4099}, int64_t{10007}}) {
      for (int n = 0; n <= 5; ++n) {
        for (bool in_place : {false, true}) {
          ASSERT_EQ(CheckMix(dtype, count, n, in_place), 0);
        }
      }
    }
  }
}

TEST(CpuMixTest, LargeTensors) {
  for (DataType dtype : kMixDtypes) {
    for (int n : {0, 1, 5}) {
      ASSERT_EQ(CheckMix(dtype, 299993, n, /*in_place=*/n == 1), 0);
    }
  }
}

// float32 takes each weight rounded to float: 0.1f * 3, not the double product rounded.
TEST(CpuMixTest, Float32WeightsAreRoundedToFloat) {
  std::vector<float> self(1, 3.0f), out(1), neighbour(1, 3.0f);
  MixArgs args;
  args.out = out.data();
  args.self = self.data();
  args.self_weight = 0.1;
  args.neighbours = {neighbour.data()};
  args.weights = {0.1};
  args.count = 1;
  ASSERT_TRUE(cpu::Mix(args).ok());
  EXPECT_EQ(out[0], 0.1f * 3.0f + 0.1f * 3.0f);
}

TEST(CpuMixTest, NanAndInfinityPropagate) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> self = {1.0f, inf, nan, 1.0f}, a = {nan, 1.0f, 1.0f, inf},
                     b = {1.0f, -inf, 1.0f, 1.0f}, out(4);
  MixArgs args;
  args.out = out.data();
  args.self = self.data();
  args.self_weight = 0.5;
  args.neighbours = {a.data(), b.data()};
  args.weights = {0.25, 0.25};
  args.count = 4;
  ASSERT_TRUE(cpu::Mix(args).ok());
  EXPECT_TRUE(std::isnan(out[0]));
  EXPECT_TRUE(std::isnan(out[1]));  // inf - inf
  EXPECT_TRUE(std::isnan(out[2]));
  EXPECT_EQ(out[3], inf);
  for (DataType dtype : {DataType::kFloat16, DataType::kBFloat16}) {
    Tensor s(dtype, 2), n(dtype, 2), o(dtype, 2);
    s.Set(0, std::nan(""));
    s.Set(1, 1.0);
    n.Set(0, 1.0);
    n.Set(1, -std::numeric_limits<double>::infinity());
    args.out = o.data();
    args.self = s.data();
    args.neighbours = {n.data()};
    args.weights = {0.5};
    args.count = 2;
    args.dtype = dtype;
    ASSERT_TRUE(cpu::Mix(args).ok());
    EXPECT_TRUE(std::isnan(o.Get(0))) << DataTypeName(dtype);
    EXPECT_EQ(o.Get(1), -std::numeric_limits<double>::infinity()) << DataTypeName(dtype);
  }
}

TEST(CpuMixTest, TakesTheFloatingTypesOnly) {
  for (DataType dtype : kMixDtypes) EXPECT_TRUE(cpu::IsMixDataType(dtype));
  for (DataType dtype : {DataType::kUInt8, DataType::kInt8, DataType::kInt16, DataType::kInt32,
                         DataType::kInt64, DataType::kBool}) {
    EXPECT_FALSE(cpu::IsMixDataType(dtype));
    std::vector<int64_t> x(4);
    MixArgs args;
    args.out = x.data();
    args.self = x.data();
    args.count = 4;
    args.dtype = dtype;
    const Status st = cpu::Mix(args);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(st.message().find(DataTypeName(dtype)), std::string::npos) << st.message();
  }
}

// The argument checks, each with the word its message must contain.
TEST(CpuMixTest, RefusesBadArguments) {
  std::vector<float> self(8), out(8), n0(8), n1(8);
  auto valid = [&]() {
    MixArgs args;
    args.out = out.data();
    args.self = self.data();
    args.neighbours = {n0.data(), n1.data()};
    args.weights = {0.25, 0.25};
    args.count = 8;
    return args;
  };
  ASSERT_TRUE(cpu::Mix(valid()).ok());
  auto expect_refused = [](const MixArgs& args, const std::string& word) {
    const Status st = cpu::Mix(args);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << word;
    EXPECT_NE(st.message().find(word), std::string::npos) << st.message();
  };
  MixArgs args = valid();
  args.weights.pop_back();
  expect_refused(args, "1 weights for 2 neighbours");
  args = valid();
  args.count = -1;
  expect_refused(args, "negative");
  args = valid();
  args.out = nullptr;
  expect_refused(args, "null output");
  args = valid();
  args.self = nullptr;
  expect_refused(args, "this rank's tensor");
  args = valid();
  args.neighbours[1] = nullptr;
  expect_refused(args, "neighbour 1");
  args = valid();
  args.out = n0.data();
  expect_refused(args, "output is neighbour 0");
  // Nothing to mix: no pointer is needed, but the weights must still match.
  MixArgs empty;
  empty.count = 0;
  empty.neighbours = {nullptr};
  empty.weights = {1.0};
  EXPECT_TRUE(cpu::Mix(empty).ok());
  empty.weights.clear();
  expect_refused(empty, "0 weights for 1 neighbours");
}

}  // namespace
}  // namespace braid
