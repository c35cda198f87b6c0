// DGC's threshold selection (ops/compress/selection.h, ThresholdTopK): its
// guarantee (the entries are the first min(k, candidates) of the exact order),
// the rounds, determinism and the edge cases.
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
using test_util::ReferenceOrder;
using test_util::Values;

ThresholdResult RunThreshold(Values& x, int64_t k, const ThresholdOptions& o, Indices* idx,
                             Values* vals) {
  ThresholdResult r;
  Status st = ThresholdTopK(x.View(), k, idx->View(), vals->View(), o, &r);
  EXPECT_TRUE(st.ok()) << st.message();
  return r;
}

// The documented guarantee, checked on one result.
void ExpectGuarantee(Values& x, int64_t k, const ThresholdOptions& o) {
  Indices idx(DataType::kInt64, k);
  Values vals(x.dtype(), k);
  const ThresholdResult r = RunThreshold(x, k, o, &idx, &vals);
  ASSERT_GE(r.rounds, 1);
  ASSERT_LE(r.rounds, o.max_rounds);
  ASSERT_EQ(r.selected, std::min(k, r.candidates));
  const std::vector<int64_t> order = ReferenceOrder(x);
  std::vector<int64_t> expected(order.begin(), order.begin() + r.selected);
  std::sort(expected.begin(), expected.end());
  ExpectSelection(x, idx, vals, expected);
  // The candidates are the elements at or above the reported threshold (NaN is
  // above every threshold; a NaN threshold lets only NaN through).
  int64_t at_least = 0;
  for (int64_t i = 0; i < x.n(); ++i) {
    const double m = std::fabs(x.Get(i));
    at_least += std::isnan(m) || (!std::isnan(r.threshold) && m >= r.threshold);
  }
  EXPECT_EQ(at_least, r.candidates);
}

TEST(CompressThreshold, ReturnsTheExactTopKOnGradientLikeBuffers) {
  for (DataType dtype : test_util::kValueTypes) {
    for (int64_t n : {5000, 200000}) {
      Values x(dtype, n);
      FillNormal(&x, static_cast<uint32_t>(n) + 1);
      for (int64_t k : {n / 1000, n / 100, n / 10}) {
        SCOPED_TRACE(std::string(DataTypeName(dtype)) + " n=" + std::to_string(n) +
                     " k=" + std::to_string(k));
        ThresholdOptions o;
        o.seed = 17;
        Indices idx(DataType::kInt32, k);
        Values vals(dtype, k);
        const ThresholdResult r = RunThreshold(x, k, o, &idx, &vals);
        EXPECT_EQ(r.selected, k);
        EXPECT_GE(r.candidates, k);
        ExpectGuarantee(x, k, o);
      }
    }
  }
}

TEST(CompressThreshold, FewerThanKOnlyWhenTheRoundsRunOut) {
  // One round and a 0.1% sample: the sample's largest magnitude is the threshold,
  // which lets about as many elements through as k, more or fewer by the seed.
  const int64_t n = 100000, k = 1000;
  Values x(DataType::kFloat32, n);
  FillNormal(&x, 23);
  ThresholdOptions o;
  o.sample_fraction = 0.001;
  o.max_rounds = 1;
  int fewer = 0, exact = 0;
  for (uint64_t seed = 0; seed < 24; ++seed) {
    o.seed = seed;
    Indices idx(DataType::kInt64, k);
    Values vals(DataType::kFloat32, k);
    const ThresholdResult r = RunThreshold(x, k, o, &idx, &vals);
    EXPECT_EQ(r.rounds, 1);
    (r.selected < k ? fewer : exact)++;
    ExpectGuarantee(x, k, o);
  }
  EXPECT_GT(fewer, 0);
  EXPECT_GT(exact, 0);
  // With the rounds DGC allows, the same buffer always reaches k.
  o.max_rounds = 10;
  for (uint64_t seed = 0; seed < 24; ++seed) {
    o.seed = seed;
    Indices idx(DataType::kInt64, k);
    Values vals(DataType::kFloat32, k);
    EXPECT_EQ(RunThreshold(x, k, o, &idx, &vals).selected, k);
  }
}

TEST(CompressThreshold, SameSeedSameResult) {
  const int64_t n = 50000, k = 500;
  Values x(DataType::kFloat32, n);
  FillNormal(&x, 29);
  ThresholdOptions o;
  o.seed = 99;
  Indices a(DataType::kInt64, k), b(DataType::kInt64, k);
  Values va(DataType::kFloat32, k), vb(DataType::kFloat32, k);
  const ThresholdResult ra = RunThreshold(x, k, o, &a, &va), rb = RunThreshold(x, k, o, &b, &vb);
  EXPECT_EQ(ra.rounds, rb.rounds);
  EXPECT_EQ(ra.threshold, rb.threshold);
  EXPECT_EQ(ra.candidates, rb.candidates);
  EXPECT_EQ(a.First(ra.selected), b.First(rb.selected));
}

TEST(CompressThreshold, TiesZerosNanAndInf) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  ThresholdOptions o;
  for (DataType dtype : test_util::kValueTypes) {
    SCOPED_TRACE(DataTypeName(dtype));
    const int64_t n = 20000;
    Values zeros(dtype, n), equal(dtype, n), nans(dtype, n), infs(dtype, n), sparse(dtype, n);
    FillNormal(&nans, 1);
    FillNormal(&infs, 2);
    for (int64_t i = 0; i < n; ++i) {
      equal.Set(i, i % 2 ? -2.0 : 2.0);
      if (i % 3 == 0) nans.Set(i, nan);
      if (i % 4 == 0) infs.Set(i, i % 8 ? inf : -inf);
      sparse.Set(i, i % 1000 == 7 ? 1.0 + i : 0.0);
    }
    for (Values* x : {&zeros, &equal, &nans, &infs, &sparse}) {
      for (int64_t k : {int64_t{1}, int64_t{100}, int64_t{2000}}) ExpectGuarantee(*x, k, o);
    }
    // Everything or nothing: no sampling, no rounds.
    Indices idx(DataType::kInt64, n);
    Values vals(dtype, n);
    ThresholdResult r = RunThreshold(nans, n, o, &idx, &vals);
    EXPECT_EQ(r.selected, n);
    EXPECT_EQ(r.rounds, 0);
    r = RunThreshold(nans, 0, o, &idx, &vals);
    EXPECT_EQ(r.selected, 0);
  }
}

TEST(CompressThreshold, BadOptionsAreErrors) {
  Values x(DataType::kFloat32, 100);
  Indices idx(DataType::kInt64, 100);
  ThresholdResult r;
  ThresholdOptions o;
  o.sample_fraction = 0.0;
  EXPECT_FALSE(ThresholdTopK(x.View(), 5, idx.View(), BufferView{}, o, &r).ok());
  o.sample_fraction = 1.5;
  EXPECT_FALSE(ThresholdTopK(x.View(), 5, idx.View(), BufferView{}, o, &r).ok());
  o = ThresholdOptions{};
  o.max_rounds = 0;
  EXPECT_FALSE(ThresholdTopK(x.View(), 5, idx.View(), BufferView{}, o, &r).ok());
  EXPECT_FALSE(ThresholdTopK(x.View(), 101, idx.View(), BufferView{}, ThresholdOptions{}, &r).ok());
}

}  // namespace
}  // namespace braid::compress
