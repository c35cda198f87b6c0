// The pieces of the sparse collectives that need no other rank: the message
// layout, the host scatter-add and index check, request description and
// validation, the control-plane encoding of the sparse fields, negotiation
// (what must agree and what may differ), the response cache and fusion.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "collectives/cpu/scatter_add.h"
#include "collectives/sparse/sparse_layout.h"
#include "common/half.h"
#include "core/fusion.h"
#include "core/message_table.h"
#include "core/response_cache.h"
#include "core/wire.h"

namespace braid {
namespace {

TEST(SparseLayout, BlocksAreAlignedAndBackToBack) {
  // 2 ranks, 2 tensors (rows 1 and 3), int32 indices, float64 values.
  SparseLayout l = PlanSparseLayout(2, {1, 3}, {3, 1, 0, 2}, DataType::kInt32, DataType::kFloat64);
  // Rank 0: 4 indices (16 bytes), values 3*8 + 1*3*8 = 48: 64 bytes.
  EXPECT_EQ(l.IndexOffset(0, 0), 0);
  EXPECT_EQ(l.IndexOffset(0, 1), 12);
  EXPECT_EQ(l.ValueOffset(0, 0), 16);
  EXPECT_EQ(l.ValueOffset(0, 1), 16 + 24);
  EXPECT_EQ(l.message_bytes[0], 64);
  // Rank 1: 2 indices (8 bytes), values 2*3*8 = 48.
  EXPECT_EQ(l.message_offset[1], 64);
  EXPECT_EQ(l.IndexOffset(1, 1), 64);
  EXPECT_EQ(l.ValueOffset(1, 1), 72);
  EXPECT_EQ(l.message_bytes[1], 56);
  EXPECT_EQ(l.gathered_bytes(), 120);
  EXPECT_EQ(l.TotalPairs(0), 3);
  EXPECT_EQ(l.TotalPairs(1), 3);
  for (int r = 0; r < 2; ++r)
    for (int t = 0; t < 2; ++t) EXPECT_EQ(l.ValueOffset(r, t) % 8, 0);
}

TEST(ScatterAdd, SumsDuplicatesRowsAndScales) {
  std::vector<float> dense(6, 0.0f);  // 3 rows of 2
  const int64_t idx[] = {2, 0, 2};
  const float vals[] = {1, 2, 3, 4, 5, 6};
  cpu::ScatterAdd(dense.data(), 3, 2, DataType::kFloat32, idx, DataType::kInt64, vals, 3, 0.5);
  EXPECT_EQ(dense, (std::vector<float>{1.5f, 2.0f, 0, 0, 3.0f, 4.0f}));
}

TEST(ScatterAdd, SkipsIndicesOutOfRangeAndFindsTheFirst) {
  std::vector<double> dense(4, 0.0);
  const int32_t idx[] = {1, -1, 4, 3};
  const double vals[] = {1, 2, 3, 4};
  cpu::ScatterAdd(dense.data(), 4, 1, DataType::kFloat64, idx, DataType::kInt32, vals, 4, 1.0);
  EXPECT_EQ(dense, (std::vector<double>{0, 1, 0, 4}));
  int64_t value = 0;
  EXPECT_EQ(cpu::FindIndexOutOfRange(idx, DataType::kInt32, 4, 4, &value), 1);
  EXPECT_EQ(value, -1);
  EXPECT_EQ(cpu::FindIndexOutOfRange(idx, DataType::kInt32, 1, 4, &value), -1);
  const int64_t big[] = {0, int64_t{1} << 40};
  EXPECT_EQ(cpu::FindIndexOutOfRange(big, DataType::kInt64, 2, 1 << 30, &value), 1);
  EXPECT_EQ(value, int64_t{1} << 40);
}

TEST(ScatterAdd, SixteenBitFloatsAddInFloat32AndRoundPerPair) {
  for (DataType dtype : {DataType::kFloat16, DataType::kBFloat16}) {
    const bool bf = dtype == DataType::kBFloat16;
    auto narrow = [bf](float f) { return bf ? FloatToBFloat16(f) : FloatToHalf(f); };
    auto widen = [bf](uint16_t h) { return bf ? BFloat16ToFloat(h) : HalfToFloat(h); };
    std::vector<uint16_t> dense(2, narrow(0.0f));
    const int32_t idx[] = {1, 1, 0};
    const uint16_t vals[] = {narrow(1.5f), narrow(2.25f), narrow(-3.0f)};
    cpu::ScatterAdd(dense.data(), 2, 1, dtype, idx, DataType::kInt32, vals, 3, 1.0);
    EXPECT_EQ(widen(dense[0]), -3.0f);
    EXPECT_EQ(widen(dense[1]), 3.75f);
  }
}

SparseParts Parts(int64_t k, std::vector<int64_t> dense) {
  SparseParts p;
  p.index_shape = {k};
  p.dense_shape = dense;
  p.value_shape = {k};
  if (!dense.empty()) p.value_shape.insert(p.value_shape.end(), dense.begin() + 1, dense.end());
  return p;
}

TEST(DescribeSparse, FillsTheMetaAndRefusesWhatDoesNotFit) {
  RequestMeta m;
  ASSERT_TRUE(DescribeSparse("e", Collective::kSparseAllreduce, Parts(4, {10, 3}), &m).ok());
  EXPECT_EQ(m.pairs, 4);
  EXPECT_EQ(m.shape, (std::vector<int64_t>{10, 3}));
  EXPECT_EQ(SparseRowElements(m), 3);
  EXPECT_TRUE(ValidateRequest(m, 2).ok());
  SparseParts bad = Parts(4, {10, 3});
  bad.value_shape = {4, 2};
  EXPECT_FALSE(DescribeSparse("e", Collective::kSparseAllreduce, bad, &m).ok());
  bad = Parts(4, {10});
  bad.index_device = 0;
  EXPECT_FALSE(DescribeSparse("e", Collective::kSparseAllreduce, bad, &m).ok());
  bad = Parts(4, {10});
  bad.dense_dtype = DataType::kFloat64;
  EXPECT_FALSE(DescribeSparse("e", Collective::kSparseAllreduce, bad, &m).ok());
  // A sparse allgather has no dense tensor of its own: its dtype is not compared.
  EXPECT_TRUE(DescribeSparse("e", Collective::kSparseAllgather, bad, &m).ok());
  EXPECT_FALSE(DescribeSparse("e", Collective::kSparseAllreduce, Parts(4, {}), &m).ok());
}

TEST(ValidateRequest, SparseRules) {
  RequestMeta m;
  ASSERT_TRUE(DescribeSparse("e", Collective::kSparseAllreduce, Parts(2, {8}), &m).ok());
  RequestMeta ints = m;
  ints.dtype = DataType::kInt32;
  EXPECT_FALSE(ValidateRequest(ints, 2).ok());
  RequestMeta max = m;
  max.op = ReduceOp::kMax;
  EXPECT_FALSE(ValidateRequest(max, 2).ok());
  RequestMeta scaled = m;
  scaled.prescale = 2;
  EXPECT_FALSE(ValidateRequest(scaled, 2).ok());
  RequestMeta huge = m;
  huge.shape = {(int64_t{1} << 31) + 1};
  EXPECT_FALSE(ValidateRequest(huge, 2).ok());  // int32 cannot address it
  huge.index_dtype = DataType::kInt64;
  EXPECT_TRUE(ValidateRequest(huge, 2).ok());
  huge.shape = {int64_t{1} << 31};  // indices up to 2^31 - 1: int32 is enough
  huge.index_dtype = DataType::kInt32;
  EXPECT_TRUE(ValidateRequest(huge, 2).ok());
}

RequestMeta SparseMeta(const std::string& name, int64_t pairs) {
  RequestMeta m;
  EXPECT_TRUE(DescribeSparse(name, Collective::kSparseAllreduce, Parts(pairs, {50, 2}), &m).ok());
  m.op = ReduceOp::kAverage;
  return m;
}

TEST(SparseWire, FieldsRoundTrip) {
  RequestMeta m = SparseMeta("s", 7);
  m.index_dtype = DataType::kInt64;
  m.dense_fallback = false;
  std::vector<RequestMeta> out;
  ASSERT_TRUE(DecodeRequests(EncodeRequests({m}), &out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0] == m);
  EXPECT_EQ(out[0].pairs, 7);
  EXPECT_FALSE(out[0].dense_fallback);
}

TEST(SparseNegotiation, PairsMayDifferTheDenseTensorMayNot) {
  EXPECT_EQ(FindMismatch({SparseMeta("s", 0), SparseMeta("s", 9), SparseMeta("s", 3)}), "");
  RequestMeta other_shape = SparseMeta("s", 1);
  other_shape.shape = {51, 2};
  EXPECT_NE(FindMismatch({SparseMeta("s", 1), other_shape}).find("dense shapes"),
            std::string::npos);
  RequestMeta other_index = SparseMeta("s", 1);
  other_index.index_dtype = DataType::kInt64;
  EXPECT_NE(FindMismatch({SparseMeta("s", 1), other_index}).find("index types"), std::string::npos);
  RequestMeta summed = SparseMeta("s", 1);
  summed.op = ReduceOp::kSum;
  EXPECT_NE(FindMismatch({SparseMeta("s", 1), summed}).find("reduce operations"),
            std::string::npos);
  RequestMeta no_fallback = SparseMeta("s", 1);
  no_fallback.dense_fallback = false;
  EXPECT_NE(FindMismatch({SparseMeta("s", 1), no_fallback}).find("dense_fallback"),
            std::string::npos);
}

TEST(SparseNegotiation, CachedResponseMatchesAnyPairCount) {
  Response r;
  r.meta = SparseMeta("s", 4);
  EXPECT_TRUE(ResponseMatches(r, SparseMeta("s", 0), 1));
  EXPECT_TRUE(ResponseMatches(r, SparseMeta("s", 400), 0));
  RequestMeta other = SparseMeta("s", 4);
  other.shape = {50, 3};
  EXPECT_FALSE(ResponseMatches(r, other, 0));
}

TEST(SparseFusion, FusesCompatibleSparseAllreducesOnly) {
  auto response = [](const std::string& name, DataType index, bool fallback) {
    Response r;
    r.meta = SparseMeta(name, 4);
    r.meta.index_dtype = index;
    r.meta.dense_fallback = fallback;
    return r;
  };
  Response dense;
  dense.meta.name = "d";
  dense.meta.shape = {4};
  dense.meta.op = ReduceOp::kAverage;
  std::vector<Response> rs = {
      response("a", DataType::kInt32, true), response("b", DataType::kInt32, true),
      response("c", DataType::kInt64, true), response("d", DataType::kInt64, false), dense};
  std::vector<size_t> counts;
  for (const FusionGroup& g : PlanFusion(rs, 1 << 20)) counts.push_back(g.count);
  EXPECT_EQ(counts, (std::vector<size_t>{2, 1, 1, 1}));
  Response gather = response("g", DataType::kInt32, true);
  gather.meta.collective = Collective::kSparseAllgather;
  EXPECT_EQ(PlanFusion({gather, gather}, 1 << 20).size(), 2u);
}

}  // namespace
}  // namespace braid
