// Who runs the rounds: a caller waiting for its handle runs them itself when no
// other thread does (core/coordinator.h, "Caller-driven rounds"), and the
// coordinator thread runs the rest. Whichever thread runs them, every rank must
// execute the same collectives in the same order with the right results; work
// nobody waits for must still complete; shutdown must reach a caller in a round;
// and the stage counters (core/stage_times.h) must count every request.
#include <gtest/gtest.h>
#include <mpi.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "braid/braid.h"
#include "core/engine.h"
#include "core/stage_times.h"
#include "tests/mpi/engine_test_util.h"

namespace braid {
namespace {

using engine_test::AllreduceOf;
using engine_test::WorldRank;
using engine_test::WorldSize;

// sum over ranks r of (r + 1) * v
float RankWeightedSum(float v) {
  const int n = WorldSize();
  return v * static_cast<float>(n * (n + 1) / 2);
}

// Records which threads ran the rounds that answered something.
struct RoundThreads {
  std::mutex mu;
  std::set<std::thread::id> ids;
  RoundHook Hook() {
    return [this](const std::vector<Response>& agreed) {
      if (agreed.empty()) return;
      std::lock_guard<std::mutex> lock(mu);
      ids.insert(std::this_thread::get_id());
    };
  }
  bool Saw(std::thread::id id) {
    std::lock_guard<std::mutex> lock(mu);
    return ids.count(id) > 0;
  }
};

// Submit-and-wait in a loop: the results are right at every step, and the
// caller's own thread ran some of the rounds (it waits within microseconds of
// submitting, so out of hundreds of steps it takes the round at least once).
TEST(EngineDrivers, CallerRunsTheRoundsItWaitsFor) {
  const int rank = WorldRank();
  RoundThreads threads;
  EngineOptions options;
  options.after_round = threads.Hook();
  std::unique_ptr<Engine> engine;
  ASSERT_TRUE(Engine::Create(options, Config(), &engine).ok());
  std::vector<float> x(5);
  for (int step = 0; step < 500; ++step) {
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((rank + 1) * (step + i));
    std::shared_ptr<Handle> h;
    ASSERT_TRUE(engine->Enqueue(AllreduceOf("step", &x), &h).ok());
    ASSERT_TRUE(h->Wait().ok());
    for (size_t i = 0; i < x.size(); ++i)
      ASSERT_EQ(x[i], RankWeightedSum(static_cast<float>(step + i))) << "step " << step;
  }
  if (WorldSize() > 1) EXPECT_TRUE(threads.Saw(std::this_thread::get_id()));
  engine->Shutdown();
}

// After a run of caller-driven rounds (new work no longer wakes the coordinator
// thread at once), work that nobody waits for must still be taken: the
// coordinator thread looks at the queue on its own.
TEST(EngineDrivers, WorkNobodyWaitsForCompletes) {
  const int rank = WorldRank();
  std::unique_ptr<Engine> engine;
  ASSERT_TRUE(Engine::Create(EngineOptions(), Config(), &engine).ok());
  std::vector<float> x(3);
  for (int step = 0; step < 100; ++step) {
    x.assign(3, static_cast<float>(rank + 1));
    std::shared_ptr<Handle> h;
    ASSERT_TRUE(engine->Enqueue(AllreduceOf("warm", &x), &h).ok());
    ASSERT_TRUE(h->Wait().ok());
  }
  std::vector<float> y(7, static_cast<float>(rank + 1));
  std::shared_ptr<Handle> h;
  ASSERT_TRUE(engine->Enqueue(AllreduceOf("unwaited", &y), &h).ok());
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!h->Poll() && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  ASSERT_TRUE(h->Poll()) << "an allreduce nobody waited for was never run";
  EXPECT_TRUE(h->status().ok()) << h->status().ToString();
  for (float v : y) EXPECT_EQ(v, RankWeightedSum(1.0f));
  engine->Shutdown();
}

// Several threads submit and wait at once, each its own names: whoever runs a
// round runs every thread's agreed work, in the same order on every rank.
TEST(EngineDrivers, ManyWaitingThreads) {
  const int rank = WorldRank();
  std::unique_ptr<Engine> engine;
  ASSERT_TRUE(Engine::Create(EngineOptions(), Config(), &engine).ok());
  constexpr int kThreads = 4, kSteps = 100;
  std::atomic<int> wrong{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      std::vector<float> x(1 + 97 * t);
      for (int step = 0; step < kSteps; ++step) {
        x.assign(x.size(), static_cast<float>((rank + 1) * (t + step)));
        std::shared_ptr<Handle> h;
        if (!engine->Enqueue(AllreduceOf("thread" + std::to_string(t), &x), &h).ok() ||
            !h->Wait().ok()) {
          ++wrong;
          continue;
        }
        for (float v : x)
          if (v != RankWeightedSum(static_cast<float>(t + step))) ++wrong;
      }
    });
  }
  for (auto& w : workers) w.join();
  EXPECT_EQ(wrong.load(), 0);
  engine->Shutdown();
}

// A caller that waits for a name the other ranks never submit runs rounds (it
// has work pending); the others' shutdown must still end its wait, with an error.
TEST(EngineDrivers, ShutdownReachesACallerInARound) {
  if (WorldSize() < 2) GTEST_SKIP() << "needs two ranks";
  const int rank = WorldRank();
  std::unique_ptr<Engine> engine;
  ASSERT_TRUE(Engine::Create(EngineOptions(), Config(), &engine).ok());
  std::vector<float> x(2, 1.0f);
  if (rank == 0) {
    std::shared_ptr<Handle> h;
    ASSERT_TRUE(engine->Enqueue(AllreduceOf("alone", &x), &h).ok());
    std::thread stopper([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      engine->Shutdown();
    });
    const Status st = h->Wait();
    stopper.join();
    EXPECT_EQ(st.code(), StatusCode::kAborted) << st.ToString();
  } else {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    engine->Shutdown();
  }
}

// Every request passes submit, hand-off (or is taken by its own caller: then the
// hand-off is the time until its round took it), negotiation and execution once;
// a blocked wait is counted when it blocked. The C API reads the same totals.
TEST(EngineDrivers, StageTimesCountEveryRequest) {
  const int rank = WorldRank();
  std::unique_ptr<Engine> engine;
  ASSERT_TRUE(Engine::Create(EngineOptions(), Config(), &engine).ok());
  ResetStageTimes();
  constexpr int kOps = 50;
  std::vector<float> x(16);
  for (int step = 0; step < kOps; ++step) {
    x.assign(x.size(), static_cast<float>(rank));
    std::shared_ptr<Handle> h;
    ASSERT_TRUE(engine->Enqueue(AllreduceOf("staged", &x), &h).ok());
    ASSERT_TRUE(h->Wait().ok());
  }
  for (Stage s : {Stage::kSubmit, Stage::kHandoff, Stage::kNegotiate, Stage::kExecute}) {
    const StageTotal t = ReadStage(s);
    EXPECT_EQ(t.count, kOps) << StageName(s);
    EXPECT_GT(t.nanoseconds, 0) << StageName(s);
  }
  EXPECT_LE(ReadStage(Stage::kWake).count, kOps);
  int64_t count = -1;
  double total_us = -1;
  ASSERT_EQ(braid_stage_times(BRAID_STAGE_EXECUTE, &count, &total_us), BRAID_OK);
  EXPECT_EQ(count, kOps);
  EXPECT_NEAR(total_us, ReadStage(Stage::kExecute).nanoseconds / 1000.0, 1e-6);
  EXPECT_EQ(braid_stage_times(kNumStages, &count, &total_us), BRAID_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(braid_stage_times(-1, &count, &total_us), BRAID_ERR_INVALID_ARGUMENT);
  ASSERT_EQ(braid_reset_stats(), BRAID_OK);
  EXPECT_EQ(ReadStage(Stage::kSubmit).count, 0);
  engine->Shutdown();
}

}  // namespace
}  // namespace braid
