// Random-k (ops/compress/selection.h): distinct ascending indices drawn from the
// seed alone, the values at them, and a rough check that every index is as likely.
#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "compress_test_util.h"
#include "ops/compress/selection.h"

namespace braid::compress {
namespace {

using test_util::FillNormal;
using test_util::Indices;
using test_util::Values;

std::vector<int64_t> Draw(int64_t n, int64_t k, uint64_t seed, DataType index = DataType::kInt64) {
  Indices idx(index, k);
  Status st = RandomKIndices(n, k, seed, index, idx.View().data);
  EXPECT_TRUE(st.ok()) << st.message();
  return idx.First(k);
}

TEST(CompressRandomK, DistinctAscendingInRange) {
  for (int64_t n : {1, 64, 65, 1000, 1000003}) {
    for (int64_t k : {int64_t{0}, int64_t{1}, n / 100, n / 2, n}) {
      const std::vector<int64_t> idx = Draw(n, k, 42);
      ASSERT_EQ(static_cast<int64_t>(idx.size()), k);
      for (int64_t j = 0; j < k; ++j) {
        ASSERT_GE(idx[j], 0);
        ASSERT_LT(idx[j], n);
        if (j > 0) ASSERT_LT(idx[j - 1], idx[j]) << "n=" << n << " k=" << k;
      }
    }
  }
}

TEST(CompressRandomK, TheSeedAloneDecides) {
  const int64_t n = 100000, k = 1000;
  EXPECT_EQ(Draw(n, k, 7), Draw(n, k, 7));
  EXPECT_EQ(Draw(n, k, 7), Draw(n, k, 7, DataType::kInt32));
  EXPECT_NE(Draw(n, k, 7), Draw(n, k, 8));
  EXPECT_NE(Draw(n, k, 0), Draw(n, k, 1));
  // The values play no part: two buffers, the same indices; the values gathered.
  Values a(DataType::kBFloat16, n), b(DataType::kBFloat16, n);
  FillNormal(&a, 1);
  FillNormal(&b, 2);
  Indices ia(DataType::kInt64, k), ib(DataType::kInt64, k);
  Values va(DataType::kBFloat16, k), vb(DataType::kBFloat16, k);
  ASSERT_TRUE(RandomK(a.View(), k, 7, ia.View(), va.View()).ok());
  ASSERT_TRUE(RandomK(b.View(), k, 7, ib.View(), vb.View()).ok());
  EXPECT_EQ(ia.First(k), ib.First(k));
  EXPECT_EQ(ia.First(k), Draw(n, k, 7));
  for (int64_t j = 0; j < k; ++j) {
    EXPECT_EQ(va.Raw(j), a.Raw(ia.Get(j)));
    EXPECT_EQ(vb.Raw(j), b.Raw(ib.Get(j)));
  }
}

TEST(CompressRandomK, EveryIndexAboutEquallyLikely) {
  // 3 of 10, 6000 draws: each index is expected 1800 times (sd about 35).
  const int draws = 6000;
  std::vector<int> hits(10, 0);
  std::set<std::vector<int64_t>> subsets;
  for (int s = 0; s < draws; ++s) {
    const std::vector<int64_t> idx = Draw(10, 3, static_cast<uint64_t>(s));
    for (int64_t i : idx) ++hits[i];
    subsets.insert(idx);
  }
  for (int h : hits) {
    EXPECT_GT(h, 1800 - 200);
    EXPECT_LT(h, 1800 + 200);
  }
  EXPECT_EQ(subsets.size(), 120u);  // every one of the C(10, 3) subsets comes up
}

TEST(CompressRandomK, BadArgumentsAreErrors) {
  Values x(DataType::kFloat32, 10);
  Indices idx(DataType::kInt64, 11);
  EXPECT_FALSE(RandomK(x.View(), 11, 1, idx.View(), BufferView{}).ok());
  EXPECT_FALSE(RandomK(x.View(), -1, 1, idx.View(), BufferView{}).ok());
  EXPECT_TRUE(RandomK(x.View(), 10, 1, idx.View(), BufferView{}).ok());
  EXPECT_EQ(idx.First(10), (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

}  // namespace
}  // namespace braid::compress
