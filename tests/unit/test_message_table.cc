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
  // Ranks may each use their own GPU: only host against GPU memory disagrees.
  RequestMeta gpu0 = a, gpu1 = a;
  gpu0.device = 0;
  gpu1.device = 1;
  EXPECT_EQ(FindMismatch({gpu0, gpu1}), "");
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

TEST(MessageTable, JoinedRanksCountAsPresent) {
  MessageTable table(3);
  Clock::time_point now = Clock::now();
  EXPECT_FALSE(table.Add(1, Meta({4}), now));
  EXPECT_TRUE(table.SetJoined({false, false, true}).empty());  // rank 0 still missing
  std::vector<std::string> done = table.SetJoined({true, false, true});
  ASSERT_EQ(done, std::vector<std::string>{"grad"});
  Response r = table.TakeResponse("grad");
  EXPECT_FALSE(r.is_error()) << r.error;
  EXPECT_EQ(r.meta.shape, std::vector<int64_t>{4});  // from rank 1, the only submitter
  // A name submitted while ranks are joined completes on the last submission.
  EXPECT_TRUE(table.Add(1, Meta({4}), now));
}

TEST(MessageTable, WithJoinedRanksOnlySubmittersAreCompared) {
  MessageTable table(4);
  table.SetJoined({true, false, false, false});
  Clock::time_point now = Clock::now();
  table.Add(1, Meta({4}), now);
  table.Add(2, Meta({4}), now);
  EXPECT_TRUE(table.Add(3, Meta({5}), now));
  Response r = table.TakeResponse("grad");
  ASSERT_EQ(r.error_code, StatusCode::kMismatch);
  EXPECT_EQ(r.error,
            "Mismatched shapes for 'grad' across ranks: rank 1 has [4], rank 2 has [4], "
            "rank 3 has [5]");
}

TEST(MessageTable, JoinedRanksGatherNoRows) {
  MessageTable table(3);
  table.SetJoined({false, true, false});
  RequestMeta g0 = Meta({2, 3}), g2 = Meta({5, 3});
  g0.collective = g2.collective = Collective::kAllgather;
  table.Add(0, g0, Clock::now());
  EXPECT_TRUE(table.Add(2, g2, Clock::now()));
  Response r = table.TakeResponse("grad");
  EXPECT_FALSE(r.is_error()) << r.error;
  EXPECT_EQ(r.first_dims, (std::vector<int64_t>{2, 0, 5}));
}

TEST(MessageTable, BroadcastWhileRanksAreJoinedIsAnError) {
  MessageTable table(4);
  table.SetJoined({false, true, false, true});
  RequestMeta b = Meta({3});
  b.collective = Collective::kBroadcast;
  table.Add(0, b, Clock::now());
  EXPECT_TRUE(table.Add(2, b, Clock::now()));
  Response r = table.TakeResponse("grad");
  EXPECT_EQ(r.error_code, StatusCode::kInvalidArgument);
  EXPECT_EQ(r.error,
            "broadcast of 'grad': rank(s) 1, 3 have called join; broadcast is not supported "
            "while ranks are joined");
  // Submitted by every rank (a joined one included), a broadcast runs as usual.
  MessageTable all(2);
  all.SetJoined({true, false});
  all.Add(0, b, Clock::now());
  EXPECT_TRUE(all.Add(1, b, Clock::now()));
  EXPECT_FALSE(all.TakeResponse("grad").is_error());
}

TEST(StallInspector, JoinedRanksAreNotMissing) {
  MessageTable table(3);
  table.SetJoined({false, true, false});
  Clock::time_point t0 = Clock::now();
  table.Add(0, Meta({1}), t0);
  StallInspector inspector(0.5, 2.0);
  std::vector<Response> errors;
  inspector.Inspect(&table, t0 + std::chrono::milliseconds(2100), &errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].error.find("submitted by ranks [0] but not by ranks [2]"), std::string::npos)
      << errors[0].error;
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
