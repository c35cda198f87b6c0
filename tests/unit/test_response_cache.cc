#include <gtest/gtest.h>

#include "core/response_cache.h"

namespace braid {
namespace {

Response Agreed(const std::string& name, std::vector<int64_t> shape) {
  Response r;
  r.meta.name = name;
  r.meta.shape = std::move(shape);
  return r;
}

TEST(ResponseCache, HitMissAndStale) {
  ResponseCache cache(4);
  bool evicted = true;
  uint32_t slot = cache.Put(Agreed("a", {3}), &evicted);
  EXPECT_FALSE(evicted);
  uint32_t found = 99;
  EXPECT_EQ(cache.Find(Agreed("a", {3}).meta, 0, &found), ResponseCache::Match::kHit);
  EXPECT_EQ(found, slot);
  EXPECT_EQ(cache.Find(Agreed("a", {4}).meta, 0, &found), ResponseCache::Match::kStale);
  EXPECT_EQ(cache.Find(Agreed("b", {3}).meta, 0, &found), ResponseCache::Match::kMiss);
  RequestMeta other_op = Agreed("a", {3}).meta;
  other_op.op = ReduceOp::kMin;
  EXPECT_EQ(cache.Find(other_op, 0, &found), ResponseCache::Match::kStale);
}

TEST(ResponseCache, ReplacingANameKeepsItsSlot) {
  ResponseCache cache(4);
  bool evicted = false;
  uint32_t first = cache.Put(Agreed("a", {3}), &evicted);
  cache.Put(Agreed("b", {3}), &evicted);
  uint32_t again = cache.Put(Agreed("a", {5}), &evicted);
  EXPECT_EQ(first, again);
  EXPECT_FALSE(evicted);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.Get(again).meta.shape, (std::vector<int64_t>{5}));
}

TEST(ResponseCache, EvictsLeastRecentlyUsedAndReusesItsSlot) {
  ResponseCache cache(3);
  bool evicted = false;
  uint32_t a = cache.Put(Agreed("a", {1}), &evicted);
  uint32_t b = cache.Put(Agreed("b", {1}), &evicted);
  uint32_t c = cache.Put(Agreed("c", {1}), &evicted);
  cache.Touch(a);
  cache.Touch(c);
  uint32_t d = cache.Put(Agreed("d", {1}), &evicted);
  EXPECT_TRUE(evicted);
  EXPECT_EQ(d, b);
  uint32_t found;
  EXPECT_EQ(cache.Find(Agreed("b", {1}).meta, 0, &found), ResponseCache::Match::kMiss);
  EXPECT_EQ(cache.Find(Agreed("a", {1}).meta, 0, &found), ResponseCache::Match::kHit);
}

TEST(ResponseCache, SameCallsGiveSameSlotsOnEveryRank) {
  // Two caches fed the same sequence (as every rank is) agree slot for slot.
  ResponseCache x(5), y(5);
  bool ex = false, ey = false;
  for (int i = 0; i < 40; ++i) {
    std::string name = "n" + std::to_string((i * 7) % 11);
    uint32_t sx = x.Put(Agreed(name, {i}), &ex);
    uint32_t sy = y.Put(Agreed(name, {i}), &ey);
    ASSERT_EQ(sx, sy);
    ASSERT_EQ(ex, ey);
    if (i % 3 == 0) {
      x.Erase(sx);
      y.Erase(sy);
    } else {
      x.Touch((sx + 1) % 5);
      y.Touch((sy + 1) % 5);
    }
  }
}

TEST(ResponseCache, EraseFreesTheLowestSlotFirst) {
  ResponseCache cache(3);
  bool evicted = false;
  cache.Put(Agreed("a", {1}), &evicted);
  uint32_t b = cache.Put(Agreed("b", {1}), &evicted);
  cache.Put(Agreed("c", {1}), &evicted);
  cache.Erase(b);
  EXPECT_EQ(cache.Put(Agreed("d", {1}), &evicted), b);
  EXPECT_FALSE(evicted);
}

TEST(ResponseMatches, AllgatherComparesOwnFirstDimension) {
  Response r = Agreed("g", {2, 3});
  r.meta.collective = Collective::kAllgather;
  r.first_dims = {2, 5, 0};
  RequestMeta on_rank1 = r.meta;
  on_rank1.shape = {5, 3};
  EXPECT_TRUE(ResponseMatches(r, on_rank1, 1));
  EXPECT_FALSE(ResponseMatches(r, on_rank1, 0));
  RequestMeta wrong_trailing = on_rank1;
  wrong_trailing.shape = {5, 4};
  EXPECT_FALSE(ResponseMatches(r, wrong_trailing, 1));
  RequestMeta zero_rows = r.meta;
  zero_rows.shape = {0, 3};
  EXPECT_TRUE(ResponseMatches(r, zero_rows, 2));
}

}  // namespace
}  // namespace braid
