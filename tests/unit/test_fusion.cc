#include <gtest/gtest.h>

#include "core/fusion.h"

namespace braid {
namespace {

Response Allreduce(int64_t elements, DataType dtype = DataType::kFloat32,
                   ReduceOp op = ReduceOp::kSum) {
  Response r;
  r.meta.name = "t" + std::to_string(elements);
  r.meta.dtype = dtype;
  r.meta.op = op;
  r.meta.shape = {elements};
  return r;
}

std::vector<size_t> Counts(const std::vector<FusionGroup>& groups) {
  std::vector<size_t> counts;
  for (const auto& g : groups) counts.push_back(g.count);
  return counts;
}

TEST(PlanFusion, PacksConsecutiveCompatibleUpToThreshold) {
  std::vector<Response> rs = {Allreduce(10), Allreduce(10), Allreduce(10), Allreduce(10)};
  auto groups = PlanFusion(rs, 80);  // two float32 tensors of 10 elements per group
  EXPECT_EQ(Counts(groups), (std::vector<size_t>{2, 2}));
  EXPECT_EQ(groups[1].first, 2u);
  EXPECT_EQ(groups[1].bytes, 80);
}

TEST(PlanFusion, ExactFitIsFusedAndOneMoreByteIsNot) {
  std::vector<Response> rs = {Allreduce(10), Allreduce(10)};
  EXPECT_EQ(Counts(PlanFusion(rs, 80)), (std::vector<size_t>{2}));
  EXPECT_EQ(Counts(PlanFusion(rs, 79)), (std::vector<size_t>{1, 1}));
}

TEST(PlanFusion, SplitsOnDtypeOpScaleAndDevice) {
  Response scaled = Allreduce(1);
  scaled.meta.prescale = 2;
  Response gpu = Allreduce(1);
  gpu.meta.device = 0;
  std::vector<Response> rs = {Allreduce(1), Allreduce(1, DataType::kFloat64),
                              Allreduce(1), Allreduce(1, DataType::kFloat32, ReduceOp::kMax),
                              scaled,       gpu,
                              Allreduce(1)};
  EXPECT_EQ(Counts(PlanFusion(rs, 1 << 20)), (std::vector<size_t>{1, 1, 1, 1, 1, 1, 1}));
}

TEST(PlanFusion, NeverFusesOtherCollectivesOrErrors) {
  Response gather = Allreduce(1);
  gather.meta.collective = Collective::kAllgather;
  Response error = Allreduce(1);
  error.error_code = StatusCode::kMismatch;
  std::vector<Response> rs = {Allreduce(1), gather,       Allreduce(1),
                              error,        Allreduce(1), Allreduce(1)};
  EXPECT_EQ(Counts(PlanFusion(rs, 1 << 20)), (std::vector<size_t>{1, 1, 1, 1, 2}));
}

TEST(PlanFusion, ZeroThresholdDisablesFusionButKeepsEveryResponse) {
  std::vector<Response> rs = {Allreduce(0), Allreduce(0), Allreduce(3)};
  auto groups = PlanFusion(rs, 0);
  // Empty tensors fit in a zero-byte threshold; the 12-byte one does not.
  EXPECT_EQ(Counts(groups), (std::vector<size_t>{2, 1}));
}

TEST(PlanFusion, LargerThanThresholdStandsAlone) {
  std::vector<Response> rs = {Allreduce(1), Allreduce(1000), Allreduce(1)};
  EXPECT_EQ(Counts(PlanFusion(rs, 100)), (std::vector<size_t>{1, 1, 1}));
}

TEST(PrefaultedBuffer, FaultsInOnlyWhatIsUsedAndKeepsIt) {
  PrefaultedBuffer buf(3 << 20);
  ASSERT_TRUE(buf.ok());
  EXPECT_EQ(buf.capacity(), 3 << 20);
  EXPECT_EQ(buf.faulted(), 0);
  char* data = buf.Prefault(1 << 20);
  ASSERT_NE(data, nullptr);
  EXPECT_EQ(buf.faulted(), 1 << 20);
  data[(1 << 20) - 1] = 7;
  // Growing keeps what was written and never shrinks; past the capacity it stops.
  EXPECT_EQ(buf.Prefault(1 << 10), data);
  EXPECT_EQ(buf.Prefault(int64_t{1} << 40), data);
  EXPECT_EQ(buf.faulted(), 3 << 20);
  EXPECT_EQ(data[(1 << 20) - 1], 7);
  EXPECT_EQ(data[(3 << 20) - 1], 0);
}

// A threshold far beyond the machine's memory reserves address space only: the
// engine's start-up no longer writes it all.
TEST(PrefaultedBuffer, AHugeCapacityCostsNothingUntilUsed) {
  PrefaultedBuffer buf(int64_t{1} << 40);
  ASSERT_TRUE(buf.ok());
  EXPECT_EQ(buf.faulted(), 0);
  char* data = buf.Prefault(4096);
  ASSERT_NE(data, nullptr);
  data[4095] = 1;
}

}  // namespace
}  // namespace braid
