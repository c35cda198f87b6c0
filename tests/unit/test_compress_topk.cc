// Exact top-k (ops/compress/selection.h) against a sort-based reference: random
// and adversarial inputs, every value dtype, both index dtypes, large buffers on
// several threads, and the segmented forms.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "compress_test_util.h"
#include "ops/compress/selection.h"

namespace braid::compress {
namespace {

using test_util::ExpectSelection;
using test_util::FillNormal;
using test_util::Indices;
using test_util::ReferenceTopK;
using test_util::Values;

void CheckTopK(Values& x, int64_t k, DataType index_dtype, int threads = 0) {
  Indices idx(index_dtype, k);
  Values vals(x.dtype(), k);
  SelectOptions options;
  options.num_threads = threads;
  Status st = TopK(x.View(), k, idx.View(), vals.View(), options);
  ASSERT_TRUE(st.ok()) << st.message();
  ExpectSelection(x, idx, vals, ReferenceTopK(x, k));
}

std::string Name(DataType d) {
  return DataTypeName(d);
}

TEST(CompressTopK, RandomBuffersEveryDtypeAndIndexType) {
  for (DataType dtype : test_util::kValueTypes) {
    for (DataType index : test_util::kIndexTypes) {
      for (int64_t n : {1, 7, 1000, 70001, 300007}) {
        Values x(dtype, n);
        FillNormal(&x, static_cast<uint32_t>(n));
        for (int64_t k : {int64_t{0}, int64_t{1}, n / 1000, n / 100, n / 2, n - 1, n}) {
          SCOPED_TRACE(Name(dtype) + " " + Name(index) + " n=" + std::to_string(n) +
                       " k=" + std::to_string(k));
          CheckTopK(x, k, index);
        }
      }
    }
  }
}

TEST(CompressTopK, AllEqualAndAllZeroTakeTheFirstIndices) {
  for (DataType dtype : test_util::kValueTypes) {
    for (int64_t n : {10, 200000}) {
      for (double v : {0.0, -0.0, 3.5, -3.5}) {
        Values x(dtype, n);
        for (int64_t i = 0; i < n; ++i) x.Set(i, (i % 2 && v == 0.0) ? -v : v);
        for (int64_t k : {int64_t{1}, n / 3, n}) {
          SCOPED_TRACE(Name(dtype) + " n=" + std::to_string(n) + " v=" + std::to_string(v));
          CheckTopK(x, k, DataType::kInt64);
          Indices idx(DataType::kInt64, k);
          Values vals(dtype, k);
          ASSERT_TRUE(TopK(x.View(), k, idx.View(), vals.View()).ok());
          EXPECT_EQ(idx.Get(k - 1), k - 1);  // ties: the smaller index first
        }
      }
    }
  }
}

TEST(CompressTopK, NanIsTheLargestMagnitudeThenInf) {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (DataType dtype : test_util::kValueTypes) {
    for (int64_t n : {100, 100000}) {
      Values x(dtype, n);
      FillNormal(&x, 7);
      x.Set(n / 2, -inf);
      x.Set(n / 3, nan);
      x.Set(n - 1, inf);
      x.Set(5, -nan);
      SCOPED_TRACE(Name(dtype) + " n=" + std::to_string(n));
      Indices idx(DataType::kInt64, 4);
      Values vals(dtype, 4);
      ASSERT_TRUE(TopK(x.View(), 2, idx.View(), vals.View()).ok());
      EXPECT_EQ(idx.First(2), (std::vector<int64_t>{5, n / 3}));
      ASSERT_TRUE(TopK(x.View(), 4, idx.View(), vals.View()).ok());
      EXPECT_EQ(idx.First(4), (std::vector<int64_t>{5, n / 3, n / 2, n - 1}));
      EXPECT_TRUE(std::isnan(vals.Get(0)));
      EXPECT_EQ(vals.Get(2), -inf);  // the signed value is sent
      for (int64_t k : {int64_t{3}, int64_t{50}, n}) CheckTopK(x, k, DataType::kInt32);
    }
  }
}

TEST(CompressTopK, NegativeValuesAndTiesFromASmallSet) {
  for (DataType dtype : test_util::kValueTypes) {
    for (int64_t n : {1000, 250000}) {
      Values x(dtype, n);
      for (int64_t i = 0; i < n; ++i) x.Set(i, static_cast<double>((i * 7919) % 9) - 4.0);
      for (int64_t k : {int64_t{1}, n / 9, n / 9 + 1, n / 4, 2 * n / 9 + 3}) {
        SCOPED_TRACE(Name(dtype) + " n=" + std::to_string(n) + " k=" + std::to_string(k));
        CheckTopK(x, k, DataType::kInt64);
      }
    }
  }
}

TEST(CompressTopK, SortedAndSkewedBuffers) {
  const int64_t n = 400000;
  Values up(DataType::kFloat32, n), down(DataType::kFloat32, n), spike(DataType::kFloat32, n);
  for (int64_t i = 0; i < n; ++i) {
    up.Set(i, static_cast<double>(i));
    down.Set(i, -static_cast<double>(n - i));
    spike.Set(i, (i > n - 50) ? 1e6 + i : 1e-3 * (i % 13));
  }
  for (Values* x : {&up, &down, &spike}) {
    for (int64_t k : {int64_t{1}, int64_t{49}, int64_t{4000}}) CheckTopK(*x, k, DataType::kInt32);
  }
}

// The sampled estimate of the host kernel looks at 64-element blocks at evenly
// spaced places, one per 4096 elements (topk_host.cc); zeros there and large
// values elsewhere give it a useless estimate, which must still end in the exact
// answer (through the radix select), and so must large values there only.
TEST(CompressTopK, AMisleadingSampleStillGivesTheExactAnswer) {
  const int64_t n = 300000, blocks = n / 4096;
  Values x(DataType::kFloat32, n);
  FillNormal(&x, 3, 10.0);
  for (int64_t j = 0; j < blocks; ++j) {
    const int64_t start = (n - 64) * j / (blocks - 1);
    for (int64_t i = start; i < start + 64; ++i) x.Set(i, 0.0);
  }
  for (int64_t k : {int64_t{10}, int64_t{3000}, int64_t{200000}}) CheckTopK(x, k, DataType::kInt64);
  for (int64_t j = 0; j < blocks; ++j) x.Set((n - 64) * j / (blocks - 1), 1e9);
  for (int64_t k : {int64_t{10}, int64_t{3000}}) CheckTopK(x, k, DataType::kInt64);
}

TEST(CompressTopK, LargeBufferOnSeveralThreadsMatchesOneThread) {
  const int64_t n = 3000000;
  for (DataType dtype : {DataType::kFloat32, DataType::kBFloat16}) {
    Values x(dtype, n);
    FillNormal(&x, 11);
    for (int64_t k : {int64_t{3000}, int64_t{30000}}) {
      SCOPED_TRACE(Name(dtype) + " k=" + std::to_string(k));
      CheckTopK(x, k, DataType::kInt32, 4);
      Indices one(DataType::kInt32, k), many(DataType::kInt32, k);
      Values v1(dtype, k), v4(dtype, k);
      ASSERT_TRUE(TopK(x.View(), k, one.View(), v1.View(), SelectOptions{1}).ok());
      ASSERT_TRUE(TopK(x.View(), k, many.View(), v4.View(), SelectOptions{3}).ok());
      EXPECT_EQ(one.First(k), many.First(k));
    }
  }
}

TEST(CompressTopK, BadArgumentsAreErrors) {
  Values x(DataType::kFloat32, 10), vals(DataType::kFloat32, 11);
  Indices idx(DataType::kInt64, 11);
  EXPECT_FALSE(TopK(x.View(), 11, idx.View(), vals.View()).ok());  // k > n
  EXPECT_FALSE(TopK(x.View(), -1, idx.View(), vals.View()).ok());
  Indices small(DataType::kInt64, 2);
  EXPECT_FALSE(TopK(x.View(), 3, small.View(), vals.View()).ok());
  BufferView ints = x.View();
  ints.dtype = DataType::kInt32;
  EXPECT_FALSE(TopK(ints, 3, idx.View(), vals.View()).ok());
  Values doubles(DataType::kFloat64, 10);
  EXPECT_FALSE(TopK(x.View(), 3, idx.View(), doubles.View()).ok());
  BufferView float_indices = idx.View();
  float_indices.dtype = DataType::kFloat32;
  EXPECT_FALSE(TopK(x.View(), 3, float_indices, vals.View()).ok());
  // Indices only: a values view without data.
  EXPECT_TRUE(TopK(x.View(), 3, idx.View(), BufferView{}).ok());
  // n = 0: k = 0 is fine, k = 1 is not.
  Values empty(DataType::kFloat32, 0);
  EXPECT_TRUE(TopK(empty.View(), 0, idx.View(), vals.View()).ok());
  EXPECT_FALSE(TopK(empty.View(), 1, idx.View(), vals.View()).ok());
}

TEST(CompressTopK, SegmentedPerTensorK) {
  const std::vector<int64_t> offsets = {0, 0, 5, 1005, 1006, 201006};
  Values x(DataType::kFloat32, offsets.back());
  FillNormal(&x, 5);
  std::vector<int64_t> ks;
  ASSERT_TRUE(KForDensity(offsets, 0.01, &ks).ok());
  EXPECT_EQ(ks, (std::vector<int64_t>{0, 1, 10, 1, 2000}));
  int64_t total = 0;
  for (int64_t k : ks) total += k;
  for (DataType index : test_util::kIndexTypes) {
    Indices idx(index, total);
    Values vals(DataType::kFloat32, total);
    std::vector<int64_t> selected;
    ASSERT_TRUE(SegmentedTopK(x.View(), offsets, ks, idx.View(), vals.View(), &selected).ok());
    EXPECT_EQ(selected, ks);
    std::vector<int64_t> expected;
    for (size_t s = 0; s + 1 < offsets.size(); ++s) {
      Values seg(DataType::kFloat32, offsets[s + 1] - offsets[s]);
      for (int64_t i = 0; i < seg.n(); ++i) seg.Set(i, x.Get(offsets[s] + i));
      for (int64_t i : ReferenceTopK(seg, ks[s])) expected.push_back(offsets[s] + i);
    }
    ExpectSelection(x, idx, vals, expected);
  }
  Indices idx(DataType::kInt64, total);
  EXPECT_FALSE(SegmentedTopK(x.View(), {0, 5, 10}, {1, 1}, idx.View(), BufferView{}, nullptr).ok());
  EXPECT_FALSE(
      SegmentedTopK(x.View(), offsets, {0, 6, 0, 0, 0}, idx.View(), BufferView{}, nullptr).ok());
  EXPECT_FALSE(SegmentedTopK(x.View(), offsets, {0, 1}, idx.View(), BufferView{}, nullptr).ok());
}

TEST(CompressTopK, SegmentedGlobalK) {
  const std::vector<int64_t> offsets = {0, 1000, 1000, 150000, 150003};
  Values x(DataType::kFloat64, offsets.back());
  FillNormal(&x, 9);
  for (int64_t i = 0; i < 1000; ++i) x.Set(i, 10.0 * x.Get(i));  // a layer of large gradients
  const int64_t k = 1500;
  Indices idx(DataType::kInt64, k);
  Values vals(DataType::kFloat64, k);
  std::vector<int64_t> per_segment;
  ASSERT_TRUE(
      SegmentedTopKGlobal(x.View(), offsets, k, idx.View(), vals.View(), &per_segment).ok());
  const std::vector<int64_t> expected = ReferenceTopK(x, k);
  ExpectSelection(x, idx, vals, expected);
  std::vector<int64_t> counts(4, 0);
  for (int64_t i : expected) {
    for (size_t s = 0; s < 4; ++s) counts[s] += offsets[s] <= i && i < offsets[s + 1];
  }
  EXPECT_EQ(per_segment, counts);
  EXPECT_GT(per_segment[0], 500);  // most of the top k sit in the large layer
}

}  // namespace
}  // namespace braid::compress
