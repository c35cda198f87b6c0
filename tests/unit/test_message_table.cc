#include <gtest/gtest.h>

#include "core/message_table.h"
#include "core/stall_inspector.h"

namespace braid {
namespace {

RequestMeta Meta(std::vector<int64_t> shape, DataType dtype = DataType::kFloat32) {
  RequestMeta m;
  m.name = "grad";
  m.dtype = dtype;
  m.shape = std::move(shape);
  return m;
}

TEST(MessageTable, CompletesWhenEveryRankSubmitted) {
  MessageTable table(3);
  Clock::time_point now = Clock::now();
  EXPECT_FALSE(table.Add(0, Meta({4}), now));
  EXPECT_FALSE(table.Add(2, Meta({4}), now));
  EXPECT_FALSE(table.Add(2, Meta({4}), now));  // a repeat does not count twice
  EXPECT_TRUE(table.Add(1, Meta({4}), now));
  Response r = table.TakeResponse("grad");
  EXPECT_FALSE(r.is_error());
  EXPECT_TRUE(table.empty());
}

TEST(MessageTable, ShapeMismatchNamesTensorAndEveryRank) {
  MessageTable table(2);
  table.Add(0, Meta({4}), Clock::now());
  table.Add(1, Meta({5}), Clock::now());
  Response r = table.TakeResponse("grad");
  ASSERT_EQ(r.error_code, StatusCode::kMismatch);
  EXPECT_EQ(r.error, "Mismatched shapes for 'grad' across ranks: rank 0 has [4], rank 1 has [5]");
}

TEST(FindMismatch, EachKind) {
  RequestMeta a = Meta({2, 3});
  auto with = [&](auto change) {
    RequestMeta b = a;
    change(&b);
    return FindMismatch({a, b});
  };
  EXPECT_EQ(FindMismatch({a, a}), "");
  EXPECT_NE(with([](RequestMeta* m) { m->dtype = DataType::kInt32; }).find("data types"),
            std::string::npos);
  EXPECT_NE(with([](RequestMeta* m) { m->op = ReduceOp::kMax; }).find("reduce operations"),
            std::string::npos);
  EXPECT_NE(with([](RequestMeta* m) { m->device = 0; }).find("devices"), std::string::npos);
  EXPECT_NE(with([](RequestMeta* m) { m->prescale = 2; }).find("scale factors"), std::string::npos);
  EXPECT_NE(with([](RequestMeta* m) { m->collective = Collective::kBroadcast; }).find("operations"),
            std::string::npos);
  RequestMeta b1 = a, b2 = a;
  b1.collective = b2.collective = Collective::kBroadcast;
  b2.root = 1;
  EXPECT_NE(FindMismatch({b1, b2}).find("root ranks"), std::string::npos);
  RequestMeta g1 = a, g2 = a;
  g1.collective = g2.collective = Collective::kAllgather;
  g2.shape = {7, 3};
  EXPECT_EQ(FindMismatch({g1, g2}), "");  // first dimensions may differ
  g2.shape = {2, 4};
  EXPECT_NE(FindMismatch({g1, g2}).find("allgather shapes"), std::string::npos);
}

TEST(StallInspector, TimesOutMissingRanksWithAClearError) {
  MessageTable table(3);
  Clock::time_point t0 = Clock::now();
  table.Add(0, Meta({1}), t0);
  table.Add(2, Meta({1}), t0);
  StallInspector inspector(0.5, 2.0);
  std::vector<Response> errors;
  inspector.Inspect(&table, t0 + std::chrono::milliseconds(1500), &errors);
  EXPECT_TRUE(errors.empty());
  inspector.Inspect(&table, t0 + std::chrono::milliseconds(2100), &errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].error_code, StatusCode::kTimeout);
  EXPECT_NE(errors[0].error.find("'grad'"), std::string::npos) << errors[0].error;
  EXPECT_NE(errors[0].error.find("not by ranks [1]"), std::string::npos) << errors[0].error;
  EXPECT_NE(errors[0].error.find("ranks [0, 2]"), std::string::npos) << errors[0].error;
  EXPECT_TRUE(table.empty());
}

TEST(StallInspector, WithoutTimeoutOnlyWarns) {
  MessageTable table(2);
  Clock::time_point t0 = Clock::now();
  table.Add(0, Meta({1}), t0);
  StallInspector inspector(0.1, 0);
  std::vector<Response> errors;
  inspector.Inspect(&table, t0 + std::chrono::seconds(100), &errors);
  EXPECT_TRUE(errors.empty());
  EXPECT_FALSE(table.empty());
}

}  // namespace
}  // namespace braid
