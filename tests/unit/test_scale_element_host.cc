// The batched copy kernel's per-element arithmetic (collectives/cuda/
// scale_element.cuh), compiled for the host, against the host data plane's
// cpu::ScaleCopy and cpu::DivideBy bit for bit: the GPU scales exactly as the CPU
// (and so as Horovod) does. Needs no GPU and no CUDA toolkit.
#define __host__
#define __device__
#define __forceinline__ inline
#include "collectives/cuda/scale_element.cuh"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "collectives/cpu/reduce.h"

namespace braid {
namespace {

using cuda::detail::ApplyScaling;
using cuda::detail::ElementScaling;

ElementScaling Scaling(double factor, int64_t divisor) {
  ElementScaling s;
  s.factor = factor;
  s.apply_factor = factor != 1.0;
  s.divisor = divisor > 1 ? divisor : 1;
  s.inverse_divisor = 1.0 / static_cast<double>(s.divisor);
  return s;
}

// Random bit patterns of T (NaNs excluded: their payloads may differ).
template <class T>
std::vector<T> Values(int64_t n) {
  std::mt19937_64 rng(31);
  std::vector<T> v;
  while (static_cast<int64_t>(v.size()) < n) {
    T x;
    const uint64_t bits = rng();
    std::memcpy(&x, &bits, sizeof x);
    if constexpr (std::is_floating_point<T>::value) {
      if (x != x) continue;
    }
    v.push_back(x);
  }
  return v;
}

template <class Element>
void Check(DataType dtype, const std::vector<typename Element::Storage>& x) {
  using T = typename Element::Storage;
  for (double factor : {1.0, 0.1, 1.0 / 3, 2.5, -0.7, 3e4, 1e-5}) {
    for (int64_t divisor : {1, 3, 4}) {
      std::vector<T> host(x.size());
      cpu::ScaleCopy(host.data(), x.data(), static_cast<int64_t>(x.size()), dtype, factor);
      cpu::DivideBy(host.data(), static_cast<int64_t>(host.size()), dtype, divisor);
      const ElementScaling s = Scaling(factor, divisor);
      for (size_t i = 0; i < x.size(); ++i) {
        const T device = ApplyScaling<Element>(x[i], s);
        ASSERT_EQ(std::memcmp(&device, &host[i], sizeof(T)), 0)
            << DataTypeName(dtype) << " factor " << factor << " divisor " << divisor << " @" << i;
      }
    }
  }
}

// 16-bit encodings without NaNs (exponent all ones with a fraction).
std::vector<uint16_t> SixteenBitValues(uint16_t exponent_mask) {
  std::vector<uint16_t> v;
  for (uint32_t b = 0; b < 0x10000; b += 7) {
    const uint16_t h = static_cast<uint16_t>(b);
    if ((h & exponent_mask) == exponent_mask && (h & ~exponent_mask & 0x7fff) != 0) continue;
    v.push_back(h);
  }
  return v;
}

TEST(ScaleElementHostTest, MatchesTheHostKernelsBitForBit) {
  using namespace cuda::detail;
  Check<UInt8Element>(DataType::kUInt8, Values<uint8_t>(3000));
  Check<Int8Element>(DataType::kInt8, Values<int8_t>(3000));
  Check<Int16Element>(DataType::kInt16, Values<int16_t>(3000));
  Check<Int32Element>(DataType::kInt32, Values<int32_t>(3000));
  Check<Int64Element>(DataType::kInt64, Values<int64_t>(3000));
  Check<Float32Element>(DataType::kFloat32, Values<float>(3000));
  Check<Float64Element>(DataType::kFloat64, Values<double>(3000));
  Check<Float16Element>(DataType::kFloat16, SixteenBitValues(0x7c00));
  Check<BFloat16Element>(DataType::kBFloat16, SixteenBitValues(0x7f80));
}

}  // namespace
}  // namespace braid
