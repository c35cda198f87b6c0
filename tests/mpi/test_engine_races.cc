// Requests that arrive while a round is under way. The executor may only take
// requests this rank has negotiated: one submitted after the round started was
// not part of it, so an answer in that round for the same name (a stall
// timeout, a joined rank's stand-in) is not its answer. The race is made
// deterministic with the engine's after-round seam: the late request is
// submitted on the coordinator thread between the round and its execution.
#include <gtest/gtest.h>
#include <mpi.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/engine.h"
#include "tests/mpi/engine_test_util.h"

namespace braid {
namespace {

using engine_test::AllreduceOf;
using engine_test::WorldRank;
using engine_test::WorldSize;

// A short stall timeout, so that an unanswered name fails quickly.
Config ShortTimeout() {
  Config config;
  config.stall_warning_seconds = 0.5;
  config.stall_timeout_seconds = 1.0;
  config.idle_cycle_time_ms = 5;
  return config;
}

bool AnswersWithError(const std::vector<Response>& agreed, const std::string& name) {
  for (const Response& r : agreed)
    if (r.meta.name == name && r.is_error()) return true;
  return false;
}

bool Answers(const std::vector<Response>& agreed, const std::string& name) {
  for (const Response& r : agreed)
    if (r.meta.name == name) return true;
  return false;
}

// Submits one request from inside the after-round seam, once, when `when`
// holds for a round's answers; the main thread picks up the handle.
class LateSubmitter {
 public:
  LateSubmitter(std::string name, std::vector<float>* data) : name_(std::move(name)), data_(data) {}

  RoundHook Hook(std::function<bool(const std::vector<Response>&)> when) {
    return [this, when](const std::vector<Response>& agreed) {
      if (submitted_ || !when(agreed)) return;
      // The engine's coordinator runs before Create returns: wait for Attach.
      Engine* engine = nullptr;
      while ((engine = engine_.load()) == nullptr) std::this_thread::yield();
      Status st = engine->Enqueue(AllreduceOf(name_, data_), &handle_);
      EXPECT_TRUE(st.ok()) << st.ToString();
      submitted_ = true;
    };
  }
  void Attach(Engine* engine) { engine_.store(engine); }
  // The late request's handle, once the seam has submitted it.
  std::shared_ptr<Handle> WaitForHandle() {
    while (!submitted_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return handle_;
  }

 private:
  std::string name_;
  std::vector<float>* data_;
  std::atomic<Engine*> engine_{nullptr};
  std::atomic<bool> submitted_{false};
  std::shared_ptr<Handle> handle_;
};

// Rank 0 submits 'late' alone and it times out. Every other rank submits its own
// 'late' just after the round that carries the timeout began: that request must
// stay pending, be negotiated afresh, and complete with rank 0's second 'late'.
TEST(EngineRaces, StallTimeoutAnswersOnlyNegotiatedRequests) {
  if (WorldSize() < 2) GTEST_SKIP() << "needs two ranks";
  const int rank = WorldRank(), n = WorldSize();
  std::vector<float> late(4, static_cast<float>(rank + 1));
  LateSubmitter submitter("late", &late);
  EngineOptions options;
  if (rank != 0) {
    options.after_round = submitter.Hook(
        [](const std::vector<Response>& agreed) { return AnswersWithError(agreed, "late"); });
  }
  std::unique_ptr<Engine> engine;
  ASSERT_TRUE(Engine::Create(options, ShortTimeout(), &engine).ok());
  submitter.Attach(engine.get());
  std::shared_ptr<Handle> h;
  if (rank == 0) {
    ASSERT_TRUE(engine->Enqueue(AllreduceOf("late", &late), &h).ok());
    Status first = h->Wait();
    EXPECT_EQ(first.code(), StatusCode::kTimeout) << first.ToString();
    ASSERT_TRUE(engine->Enqueue(AllreduceOf("late", &late), &h).ok());
  } else {
    h = submitter.WaitForHandle();
  }
  Status st = h->Wait();
  EXPECT_TRUE(st.ok()) << "rank " << rank << ": " << st.ToString();
  const float expected = static_cast<float>(n * (n + 1) / 2);
  for (float v : late) EXPECT_EQ(v, expected) << "rank " << rank;
  engine->Shutdown();
}

// Rank 1 has joined and stands in (with zeros) for rank 0's 'x'. Its own 'x',
// submitted just after that round began, must not be used in place of the
// stand-in: rank 0's result is its own contribution alone. Rank 1's late 'x' is
// negotiated afresh and completes once rank 0 has joined too, rank 0 then
// standing in for it: its result is rank 1's contribution alone.
TEST(EngineRaces, JoinedRankStandsInForNamesItDidNotNegotiate) {
  if (WorldSize() != 2) GTEST_SKIP() << "written for two ranks";
  const int rank = WorldRank();
  std::vector<float> x(4, rank == 0 ? 1.0f : 100.0f);
  LateSubmitter submitter("x", &x);
  EngineOptions options;
  if (rank == 1) {
    options.after_round =
        submitter.Hook([](const std::vector<Response>& agreed) { return Answers(agreed, "x"); });
  }
  std::unique_ptr<Engine> engine;
  Config config;
  config.idle_cycle_time_ms = 5;
  ASSERT_TRUE(Engine::Create(options, config, &engine).ok());
  submitter.Attach(engine.get());
  Request join;
  join.meta.collective = Collective::kJoin;
  std::shared_ptr<Handle> joined, h;
  if (rank == 0) {
    // Rank 1's join must be known before 'x' is negotiated.
    MPI_Barrier(MPI_COMM_WORLD);
    ASSERT_TRUE(engine->Enqueue(AllreduceOf("x", &x), &h).ok());
    Status st = h->Wait();
    EXPECT_TRUE(st.ok()) << st.ToString();
    for (float v : x) EXPECT_EQ(v, 1.0f) << "the joined rank's late data was reduced";
    ASSERT_TRUE(engine->Enqueue(join, &joined).ok());
    EXPECT_TRUE(joined->Wait().ok());
  } else {
    ASSERT_TRUE(engine->Enqueue(join, &joined).ok());
    // Wait until the join has gone out in a round before rank 0 submits.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    MPI_Barrier(MPI_COMM_WORLD);
    h = submitter.WaitForHandle();
    EXPECT_TRUE(joined->Wait().ok());
    Status st = h->Wait();
    EXPECT_TRUE(st.ok()) << st.ToString();
    for (float v : x) EXPECT_EQ(v, 100.0f) << "the late 'x' was reduced with rank 0's";
  }
  engine->Shutdown();
}

}  // namespace
}  // namespace braid
