// Helpers of the compress suites: host buffers of any value dtype and the
// sort-based reference of the selection order, written from the documented rules
// (|x| descending, NaN above every number, ties by the smaller index; the result in
// ascending index order) without the kernels' magnitude keys.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "common/buffer.h"
#include "common/half.h"

namespace braid::compress::test_util {

constexpr DataType kValueTypes[] = {DataType::kFloat16, DataType::kBFloat16, DataType::kFloat32,
                                    DataType::kFloat64};
constexpr DataType kIndexTypes[] = {DataType::kInt32, DataType::kInt64};

// A host buffer of `n` values of `dtype`, read and written as doubles.
class Values {
 public:
  Values(DataType dtype, int64_t n) : dtype_(dtype), n_(n), bytes_(n * Size() + 8, 0) {}

  size_t Size() const { return DataTypeSize(dtype_); }
  int64_t n() const { return n_; }
  DataType dtype() const { return dtype_; }
  void* data() { return bytes_.data(); }
  const void* data() const { return bytes_.data(); }

  double Get(int64_t i) const {
    const char* p = bytes_.data() + i * Size();
    uint16_t h;
    float f;
    double d;
    switch (dtype_) {
      case DataType::kFloat16:
        std::memcpy(&h, p, 2);
        return HalfToFloat(h);
      case DataType::kBFloat16:
        std::memcpy(&h, p, 2);
        return BFloat16ToFloat(h);
      case DataType::kFloat32:
        std::memcpy(&f, p, 4);
        return f;
      default:
        std::memcpy(&d, p, 8);
        return d;
    }
  }

  void Set(int64_t i, double v) {
    char* p = bytes_.data() + i * Size();
    uint16_t h;
    float f = static_cast<float>(v);
    switch (dtype_) {
      case DataType::kFloat16:
        h = FloatToHalf(f);
        std::memcpy(p, &h, 2);
        break;
      case DataType::kBFloat16:
        h = FloatToBFloat16(f);
        std::memcpy(p, &h, 2);
        break;
      case DataType::kFloat32:
        std::memcpy(p, &f, 4);
        break;
      default:
        std::memcpy(p, &v, 8);
        break;
    }
  }

  // The raw bytes of element i (for exact comparisons, NaN payloads included).
  std::vector<char> Raw(int64_t i) const {
    const char* p = bytes_.data() + i * Size();
    return std::vector<char>(p, p + Size());
  }

  BufferView View() {
    BufferView v;
    v.data = data();
    v.count = n_;
    v.dtype = dtype_;
    return v;
  }

 private:
  DataType dtype_;
  int64_t n_;
  std::vector<char> bytes_;
};

// An index buffer of either index dtype.
class Indices {
 public:
  Indices(DataType dtype, int64_t n) : dtype_(dtype), n_(n), bytes_(n * 8 + 8, 0) {}
  int64_t Get(int64_t j) const {
    if (dtype_ == DataType::kInt64) return reinterpret_cast<const int64_t*>(bytes_.data())[j];
    return reinterpret_cast<const int32_t*>(bytes_.data())[j];
  }
  std::vector<int64_t> First(int64_t count) const {
    std::vector<int64_t> out(count);
    for (int64_t j = 0; j < count; ++j) out[j] = Get(j);
    return out;
  }
  BufferView View() {
    BufferView v;
    v.data = bytes_.data();
    v.count = n_;
    v.dtype = dtype_;
    return v;
  }

 private:
  DataType dtype_;
  int64_t n_;
  std::vector<char> bytes_;
};

// The full selection order: indices sorted by |x| descending (NaN first), then by
// index.
inline std::vector<int64_t> ReferenceOrder(const Values& x) {
  std::vector<int64_t> order(x.n());
  std::iota(order.begin(), order.end(), 0);
  std::vector<double> mag(x.n());
  for (int64_t i = 0; i < x.n(); ++i) mag[i] = std::fabs(x.Get(i));
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    const bool na = std::isnan(mag[a]), nb = std::isnan(mag[b]);
    if (na != nb) return na;
    if (!na && mag[a] != mag[b]) return mag[a] > mag[b];
    return a < b;
  });
  return order;
}

// The reference top-k: the first k of the order, ascending.
inline std::vector<int64_t> ReferenceTopK(const Values& x, int64_t k) {
  std::vector<int64_t> order = ReferenceOrder(x);
  order.resize(k);
  std::sort(order.begin(), order.end());
  return order;
}

// Random normal values times `scale`, with a few exact repeats (ties).
inline void FillNormal(Values* x, uint32_t seed, double scale = 1.0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, scale);
  for (int64_t i = 0; i < x->n(); ++i) {
    x->Set(i, (i % 97 == 5 && i > 0) ? x->Get(i - 1) : normal(rng));
  }
}

// Checks indices and values written by a selection against `expected`.
inline void ExpectSelection(const Values& x, const Indices& idx, const Values& vals,
                            const std::vector<int64_t>& expected) {
  const auto k = static_cast<int64_t>(expected.size());
  ASSERT_EQ(idx.First(k), expected);
  for (int64_t j = 0; j < k; ++j) {
    ASSERT_EQ(vals.Raw(j), x.Raw(expected[j])) << "value " << j << " of index " << expected[j];
  }
}

}  // namespace braid::compress::test_util
