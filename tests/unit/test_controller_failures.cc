// The control plane's failures reach every rank with their real cause. The
// controller runs here over a scripted channel: rank 0 "gathers" the lists the
// test gives it and records what it broadcasts; another rank receives exactly
// that.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "collectives/control_channel.h"
#include "core/controller.h"
#include "core/wire.h"

namespace braid {
namespace {

class ScriptedChannel : public ControlChannel {
 public:
  ScriptedChannel(int rank, int size) : rank_(rank), size_(size) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  Status GatherToRoot(const std::string& mine, std::vector<std::string>* all) override {
    all->clear();
    if (rank_ != 0) return Status::OK();
    *all = others_lists;
    all->insert(all->begin(), mine);
    return Status::OK();
  }
  Status BroadcastFromRoot(std::string* bytes) override {
    if (rank_ == 0) {
      broadcast = *bytes;
    } else {
      *bytes = broadcast;
    }
    return Status::OK();
  }
  // One rank's AND is its own words: its own flags decide the round.
  Status AllreduceBitAnd(std::vector<uint64_t>*, int) override { return Status::OK(); }

  std::vector<std::string> others_lists;  // rank 0: the lists of ranks 1, 2, ...
  std::string broadcast;                  // rank 0 records it; other ranks receive it

 private:
  int rank_, size_;
};

RequestMeta Meta(const std::string& name) {
  RequestMeta m;
  m.name = name;
  m.shape = {4};
  return m;
}

TEST(ControllerFailures, EveryRankStopsWithRankZerosReasonWhenAListIsUnreadable) {
  Config config;
  ScriptedChannel root_channel(0, 2);
  root_channel.others_lists = {"not a ready list"};
  Controller root(&root_channel, config);
  RoundResult root_round;
  Status on_root = root.RunRound({Meta("w")}, false, &root_round);
  ASSERT_FALSE(on_root.ok());
  EXPECT_NE(on_root.message().find("rank 0 could not read the ready list of rank 1"),
            std::string::npos)
      << on_root.message();
  EXPECT_NE(on_root.message().find("corrupt control message"), std::string::npos);

  ScriptedChannel worker_channel(1, 2);
  worker_channel.broadcast = root_channel.broadcast;
  Controller worker(&worker_channel, config);
  RoundResult worker_round;
  Status on_worker = worker.RunRound({Meta("w")}, false, &worker_round);
  EXPECT_EQ(on_worker.code(), on_root.code());
  EXPECT_EQ(on_worker.message(), on_root.message());
}

TEST(ControllerFailures, AFailureNoticeRoundTrips) {
  std::vector<Response> responses;
  Status st = DecodeResponses(EncodeFailure(Status(StatusCode::kInternal, "why")), &responses);
  EXPECT_EQ(st.code(), StatusCode::kInternal);
  EXPECT_EQ(st.message(), "why");
  // A notice claiming success, or cut short, is itself corrupt.
  std::string ok = EncodeFailure(Status(StatusCode::kInternal, "why"));
  ok[4] = 0;  // the code's low byte: kOk
  EXPECT_NE(DecodeResponses(ok, &responses).message().find("corrupt"), std::string::npos);
  std::string cut = EncodeFailure(Status(StatusCode::kInternal, "why"));
  cut.pop_back();
  EXPECT_NE(DecodeResponses(cut, &responses).message().find("corrupt"), std::string::npos);
}

}  // namespace
}  // namespace braid
