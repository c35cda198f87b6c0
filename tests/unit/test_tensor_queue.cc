// The pending table: a request is handed to the executor only once the
// coordinator has taken it into negotiation.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "core/tensor_queue.h"

namespace braid {
namespace {

Request Named(const std::string& name) {
  Request r;
  r.meta.name = name;
  r.meta.shape = {1};
  r.handle = std::make_shared<Handle>();
  r.enqueued_at = Clock::now();
  return r;
}

Response Answer(const std::string& name) {
  Response r;
  r.meta.name = name;
  return r;
}

// TakeGroup of one name.
bool TakeOne(TensorQueue* queue, const std::string& name, Request* out) {
  std::vector<Request> requests;
  std::vector<char> taken;
  queue->TakeGroup({Answer(name)}, 0, 1, &requests, &taken);
  if (!taken[0]) return false;
  *out = std::move(requests[0]);
  return true;
}

double MillisSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

TEST(TensorQueue, TakesOnlyRequestsTakenIntoNegotiation) {
  TensorQueue queue;
  ASSERT_TRUE(queue.Add(Named("a")).ok());
  Request out;
  EXPECT_FALSE(TakeOne(&queue, "a", &out)) << "'a' was never negotiated";
  std::vector<RequestMeta> fresh = queue.TakeNew();
  ASSERT_EQ(fresh.size(), 1u);
  EXPECT_EQ(fresh[0].name, "a");
  // Added after the round took its new requests: not part of that round.
  ASSERT_TRUE(queue.Add(Named("b")).ok());
  EXPECT_FALSE(TakeOne(&queue, "b", &out));
  ASSERT_TRUE(TakeOne(&queue, "a", &out));
  EXPECT_EQ(out.meta.name, "a");
  EXPECT_FALSE(TakeOne(&queue, "a", &out)) << "taken twice";
  EXPECT_EQ(queue.TakeNew().size(), 1u);
  EXPECT_TRUE(TakeOne(&queue, "b", &out));
  EXPECT_EQ(queue.pending(), 0u);
}

TEST(TensorQueue, RefusesADuplicateNameUntilTaken) {
  TensorQueue queue;
  ASSERT_TRUE(queue.Add(Named("a")).ok());
  EXPECT_EQ(queue.Add(Named("a")).code(), StatusCode::kDuplicateName);
  queue.TakeNew();
  Request out;
  ASSERT_TRUE(TakeOne(&queue, "a", &out));
  EXPECT_TRUE(queue.Add(Named("a")).ok());
}

TEST(TensorQueue, CloseFailsEveryPendingRequest) {
  TensorQueue queue;
  Request a = Named("a"), b = Named("b");
  std::shared_ptr<Handle> ha = a.handle, hb = b.handle;
  ASSERT_TRUE(queue.Add(std::move(a)).ok());
  queue.TakeNew();
  ASSERT_TRUE(queue.Add(std::move(b)).ok());
  queue.Close(Status(StatusCode::kAborted, "closed"));
  EXPECT_EQ(ha->Wait().code(), StatusCode::kAborted);
  EXPECT_EQ(hb->Wait().code(), StatusCode::kAborted);
  Status refused = queue.Add(Named("c"));
  EXPECT_EQ(refused.code(), StatusCode::kAborted);
  EXPECT_NE(refused.message().find("init again"), std::string::npos) << refused.message();
}

TEST(TensorQueue, TakeGroupTakesTheNegotiatedNamesOfTheGroup) {
  TensorQueue queue;
  ASSERT_TRUE(queue.Add(Named("a")).ok());
  ASSERT_TRUE(queue.Add(Named("b")).ok());
  queue.TakeNew();
  ASSERT_TRUE(queue.Add(Named("late")).ok());  // not negotiated yet
  const std::vector<Response> responses = {Answer("x"), Answer("a"), Answer("missing"),
                                           Answer("late"), Answer("b")};
  std::vector<Request> requests;
  std::vector<char> taken;
  queue.TakeGroup(responses, 1, 4, &requests, &taken);
  ASSERT_EQ(taken.size(), 4u);
  EXPECT_EQ(taken, (std::vector<char>{1, 0, 0, 1}));
  EXPECT_EQ(requests[0].meta.name, "a");
  EXPECT_EQ(requests[3].meta.name, "b");
  EXPECT_EQ(queue.pending(), 1u) << "only 'late' is left";
}

TEST(TensorQueue, ABurstEndsWhenRequestsStopComing) {
  TensorQueue queue;
  // One request is no burst: no wait, however long the gap.
  ASSERT_TRUE(queue.Add(Named("one")).ok());
  Clock::time_point start = Clock::now();
  queue.WaitForBurstEnd(std::chrono::seconds(30), std::chrono::seconds(30));
  EXPECT_LT(MillisSince(start), 10000.0);
  // Two: the wait lasts until the gap has passed since the last one (which is
  // stamped when it is made, after `made`).
  const Clock::time_point made = Clock::now();
  ASSERT_TRUE(queue.Add(Named("two")).ok());
  queue.WaitForBurstEnd(std::chrono::milliseconds(50), std::chrono::seconds(30));
  EXPECT_GE(MillisSince(made), 50.0);
}

TEST(TensorQueue, ABurstThatGoesOnIsCutAfterTheLongestWait) {
  TensorQueue queue;
  ASSERT_TRUE(queue.Add(Named("first")).ok());
  std::atomic<bool> stop{false};
  std::thread producer([&] {
    for (int i = 0; !stop.load(); ++i) {
      ASSERT_TRUE(queue.Add(Named("r" + std::to_string(i))).ok());
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const Clock::time_point start = Clock::now();
  // The gap never passes while the producer runs: the wait ends at `most`.
  queue.WaitForBurstEnd(std::chrono::seconds(30), std::chrono::milliseconds(100));
  const double waited = MillisSince(start);
  stop = true;
  producer.join();
  EXPECT_GE(waited, 100.0);
  EXPECT_LT(waited, 20000.0);
}

}  // namespace
}  // namespace braid
