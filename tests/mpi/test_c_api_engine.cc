// The engine's life and services through the C API: calls before init and after
// shutdown, re-init, idempotent init/shutdown, operations pending at shutdown,
// rank queries against MPI, braid_init_comm on a sub-communicator, concurrent
// enqueueing threads, braid_barrier, the response cache (1000 names reused, with
// capacity default, 16 and 0) and the Chrome-trace timeline.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tests/mpi/c_api_test_util.h"

namespace {

using ctu::Handle;
using ctu::Tensor;
using Clock = std::chrono::steady_clock;

// Rank 0's string (up to 4 KiB) on every rank.
std::string BroadcastString(const std::string& s) {
  char buf[4096] = {};
  std::copy_n(s.begin(), std::min<size_t>(s.size(), sizeof buf - 1), buf);
  MPI_Bcast(buf, sizeof buf, MPI_CHAR, 0, MPI_COMM_WORLD);
  return buf;
}

// Every entry point that needs an engine must refuse with NOT_INITIALIZED.
void ExpectNotInitialized() {
  EXPECT_EQ(braid_is_initialized(), 0);
  EXPECT_EQ(braid_rank(), -1);
  Tensor t(BRAID_FLOAT32, {3});
  braid_handle_t h = nullptr;
  const std::string name = ctu::UniqueName("uninit");
  EXPECT_EQ(braid_allreduce_async(name.c_str(), t.desc(), t.data(), BRAID_SUM, 1, 1, &h),
            BRAID_ERR_NOT_INITIALIZED);
  EXPECT_STRNE(braid_last_error(), "");
  EXPECT_EQ(braid_allgather_async(name.c_str(), t.desc(), &h), BRAID_ERR_NOT_INITIALIZED);
  EXPECT_STRNE(braid_last_error(), "");
  EXPECT_EQ(braid_broadcast_async(name.c_str(), t.desc(), 0, &h), BRAID_ERR_NOT_INITIALIZED);
  EXPECT_STRNE(braid_last_error(), "");
  EXPECT_EQ(braid_barrier(), BRAID_ERR_NOT_INITIALIZED);
  EXPECT_STRNE(braid_last_error(), "");
  EXPECT_EQ(h, nullptr) << "a refused call handed out a handle";
}

TEST(EngineLifecycle, NotInitializedThenInitShutdownReinit) {
  ctu::ScopedEnv env(ctu::SafetyEnv());
  ASSERT_EQ(braid_shutdown(), BRAID_OK);
  ExpectNotInitialized();
  for (int cycle = 0; cycle < 3; ++cycle) {
    SCOPED_TRACE("cycle " + std::to_string(cycle));
    ASSERT_EQ(braid_init(), BRAID_OK) << braid_last_error();
    EXPECT_EQ(braid_is_initialized(), 1);
    EXPECT_EQ(braid_rank(), ctu::MyWorldRank());
    EXPECT_EQ(braid_size(), ctu::WorldSize());
    EXPECT_EQ(braid_init(), BRAID_OK) << "init while running";
    EXPECT_EQ(braid_is_initialized(), 1);
    EXPECT_TRUE(ctu::EngineUsable());
    EXPECT_EQ(braid_barrier(), BRAID_OK) << braid_last_error();
    ASSERT_EQ(braid_shutdown(), BRAID_OK);
    EXPECT_EQ(braid_shutdown(), BRAID_OK) << "shutdown twice";
    ExpectNotInitialized();
  }
}

// Rank 0 submits a name nobody else does; shutting down must end it with
// BRAID_ERR_ABORTED, and the handle stays usable after the engine is gone.
TEST(EngineLifecycle, PendingOperationsAbortAtShutdown) {
  ASSERT_EQ(ctu::EnsureEngine({}), BRAID_OK) << braid_last_error();
  CTU_REQUIRE_RANKS(2);
  Tensor t(BRAID_FLOAT32, {16});
  Handle h;
  const std::string name = ctu::UniqueName("orphan");
  if (braid_rank() == 0) {
    EXPECT_EQ(braid_allreduce_async(name.c_str(), t.desc(), t.data(), BRAID_SUM, 1, 1, h.out()),
              BRAID_OK);
  }
  EXPECT_EQ(braid_shutdown(), BRAID_OK);
  if (h) {
    EXPECT_EQ(h.Wait(), BRAID_ERR_ABORTED) << h.Error();
    EXPECT_NE(h.Error(), "");
  }
  ASSERT_EQ(ctu::EnsureEngine({}), BRAID_OK) << braid_last_error();
  EXPECT_TRUE(ctu::EngineUsable());
}

class EngineTest : public ctu::BraidTest {};

TEST_F(EngineTest, QueriesMatchMpi) {
  EXPECT_EQ(braid_is_initialized(), 1);
  EXPECT_EQ(rank_, ctu::MyWorldRank());
  EXPECT_EQ(size_, ctu::WorldSize());
  MPI_Comm local, cross;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
  int local_rank, local_size, cross_rank, cross_size;
  MPI_Comm_rank(local, &local_rank);
  MPI_Comm_size(local, &local_size);
  MPI_Comm_split(MPI_COMM_WORLD, local_rank, rank_, &cross);
  MPI_Comm_rank(cross, &cross_rank);
  MPI_Comm_size(cross, &cross_size);
  MPI_Comm_free(&local);
  MPI_Comm_free(&cross);
  EXPECT_EQ(braid_local_rank(), local_rank);
  EXPECT_EQ(braid_local_size(), local_size);
  EXPECT_EQ(braid_cross_rank(), cross_rank);
  EXPECT_EQ(braid_cross_size(), cross_size);
}

// Two engines side by side on the even and the odd world ranks, ranked in
// reverse world order: braid's ranks and sums follow the communicator.
TEST_F(EngineTest, InitOnSubCommunicator) {
  ctu::ScopedEnv env(ctu::SafetyEnv());
  ASSERT_EQ(braid_shutdown(), BRAID_OK);
  EXPECT_EQ(braid_init_comm(nullptr), BRAID_ERR_INVALID_ARGUMENT);
  EXPECT_STRNE(braid_last_error(), "");
  const int world_rank = ctu::MyWorldRank(), world_size = ctu::WorldSize();
  MPI_Comm sub;
  MPI_Comm_split(MPI_COMM_WORLD, world_rank % 2, -world_rank, &sub);
  int sub_rank, sub_size;
  MPI_Comm_rank(sub, &sub_rank);
  MPI_Comm_size(sub, &sub_size);
  EXPECT_EQ(braid_init_comm(&sub), BRAID_OK) << braid_last_error();
  EXPECT_EQ(braid_rank(), sub_rank);
  EXPECT_EQ(braid_size(), sub_size);
  Tensor t(BRAID_INT64, {3});
  t.Fill([&](int64_t i) { return static_cast<double>(world_rank * 10 + i); });
  Handle h;
  ASSERT_EQ(braid_allreduce_async("subcomm.sum", t.desc(), t.data(), BRAID_SUM, 1, 1, h.out()),
            BRAID_OK)
      << braid_last_error();
  EXPECT_EQ(h.Wait(), BRAID_OK) << h.Error();
  EXPECT_TRUE(ctu::MatchesValues(t, [&](int64_t i) {
    double sum = 0;
    for (int r = world_rank % 2; r < world_size; r += 2) sum += r * 10 + static_cast<double>(i);
    return sum;
  }));
  h.Reset();
  EXPECT_EQ(braid_shutdown(), BRAID_OK);
  MPI_Comm_free(&sub);
}

// Four threads enqueue at once (in an order that differs between ranks); each
// uses its own names, the same on every rank.
TEST_F(EngineTest, ConcurrentThreads) {
  constexpr int kThreads = 4, kPerThread = 40;
  struct Op {
    std::unique_ptr<Tensor> t;
    std::string name;
    int submit_rc = -1, wait_rc = -1;
    bool broadcast = false;
  };
  std::vector<std::vector<Op>> ops(kThreads);
  for (int k = 0; k < kThreads; ++k) {
    for (int i = 0; i < kPerThread; ++i) {
      Op op;
      op.broadcast = i % 5 == 4;
      const int salt = k * kPerThread + i;
      op.t = std::make_unique<Tensor>(BRAID_FLOAT32, std::vector<int64_t>{1 + salt % 23});
      op.t->Fill([&](int64_t j) {
        return op.broadcast && rank_ != 0 ? 77.0 : ctu::SmallValue(BRAID_FLOAT32, rank_, j, salt);
      });
      op.name =
          "thread" + std::to_string(k) + ".op" + std::to_string(i) + "." + ctu::UniqueName("t");
      ops[k].push_back(std::move(op));
    }
  }
  std::vector<std::thread> threads;
  for (int k = 0; k < kThreads; ++k) {
    threads.emplace_back([&, k] {
      std::this_thread::sleep_for(std::chrono::milliseconds(((k + rank_) % kThreads) * 3));
      std::vector<Handle> handles(kPerThread);
      for (int i = 0; i < kPerThread; ++i) {
        Op& op = ops[k][i];
        op.submit_rc =
            op.broadcast ? braid_broadcast_async(op.name.c_str(), op.t->desc(), 0, handles[i].out())
                         : braid_allreduce_async(op.name.c_str(), op.t->desc(), op.t->data(),
                                                 BRAID_SUM, 1, 1, handles[i].out());
      }
      for (int i = 0; i < kPerThread; ++i)
        if (ops[k][i].submit_rc == BRAID_OK) ops[k][i].wait_rc = handles[i].Wait();
    });
  }
  for (auto& th : threads) th.join();
  for (int k = 0; k < kThreads; ++k) {
    for (int i = 0; i < kPerThread; ++i) {
      const Op& op = ops[k][i];
      const int salt = k * kPerThread + i;
      EXPECT_EQ(op.submit_rc, BRAID_OK) << op.name;
      EXPECT_EQ(op.wait_rc, BRAID_OK) << op.name;
      EXPECT_TRUE(ctu::MatchesValues(*op.t, [&](int64_t j) {
        return op.broadcast
                   ? ctu::SmallValue(BRAID_FLOAT32, 0, j, salt)
                   : ctu::ExpectedAllreduce(BRAID_FLOAT32, BRAID_SUM, size_, j, 1, 1, salt);
      })) << op.name;
    }
  }
}

// The last rank arrives 300 ms late: nobody leaves the barrier before it.
TEST_F(EngineTest, BarrierWaitsForEveryRank) {
  EXPECT_EQ(braid_barrier(), BRAID_OK) << braid_last_error();
  CTU_REQUIRE_RANKS(2);
  MPI_Barrier(MPI_COMM_WORLD);
  const auto t0 = Clock::now();
  if (rank_ == size_ - 1) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(braid_barrier(), BRAID_OK) << braid_last_error();
  const double waited = std::chrono::duration<double>(Clock::now() - t0).count();
  EXPECT_GE(waited, 0.2) << "left the barrier before the last rank arrived";
  EXPECT_EQ(braid_barrier(), BRAID_OK) << braid_last_error();
}

// 1000 names reused for 3 rounds with new values each round, submitted in a
// different order on each rank; some names change shape between rounds.
class CacheTest : public ctu::BraidTest, public ::testing::WithParamInterface<std::string> {
 protected:
  ctu::EnvList Env() const override {
    if (GetParam() == "default") return {};
    return {{"BRAID_CACHE_CAPACITY", GetParam()}};
  }
};

TEST_P(CacheTest, ThousandNamesThreeRounds) {
  constexpr int kNames = 1000, kRounds = 3;
  std::vector<std::string> names;
  for (int i = 0; i < kNames; ++i) names.push_back(ctu::UniqueName("n" + std::to_string(i)));
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    std::vector<std::unique_ptr<Tensor>> ts(kNames);
    std::vector<Handle> hs(kNames);
    auto dtype_of = [](int i) { return i % 9 == 4 ? BRAID_INT32 : BRAID_FLOAT32; };
    const int start = (rank_ * 337 + round * 101) % kNames;
    for (int n = 0; n < kNames; ++n) {
      const int i = (start + n) % kNames;
      const int64_t len = 1 + i % 7 + (i % 10 == 0 ? round : 0);
      ts[i] = std::make_unique<Tensor>(dtype_of(i), std::vector<int64_t>{len});
      ts[i]->Fill([&](int64_t j) { return ctu::SmallValue(dtype_of(i), rank_, j, round + i); });
      ASSERT_EQ(braid_allreduce_async(names[i].c_str(), ts[i]->desc(), ts[i]->data(), BRAID_SUM, 1,
                                      1, hs[i].out()),
                BRAID_OK)
          << names[i] << ": " << braid_last_error();
    }
    int failures = 0;  // reported for the first few names only
    for (int i = 0; i < kNames; ++i) {
      const int rc = hs[i].Wait();
      const auto match = ctu::MatchesValues(*ts[i], [&](int64_t j) {
        return ctu::ExpectedAllreduce(dtype_of(i), BRAID_SUM, size_, j, 1, 1, round + i);
      });
      if (rc == BRAID_OK && match) continue;
      if (++failures > 5) continue;
      EXPECT_EQ(rc, BRAID_OK) << names[i] << ": " << hs[i].Error();
      EXPECT_TRUE(match) << names[i];
    }
    EXPECT_EQ(failures, 0) << "names that failed in this round";
  }
}

INSTANTIATE_TEST_SUITE_P(Capacities, CacheTest, ::testing::Values("default", "16", "0"),
                         [](const ::testing::TestParamInfo<std::string>& p) {
                           return "capacity_" + p.param;
                         });

// ------------------------------------------------------------------ timeline

struct Phase {
  double ts, dur;
};
using PhasesByTensor = std::map<std::string, std::map<std::string, Phase>>;

// Parses a Chrome-trace timeline: tensors are named by process_name metadata
// ("M") events; phases are complete ("X") events. Problems go to *error.
PhasesByTensor ParseTimeline(const std::string& path, std::string* error) {
  PhasesByTensor out;
  std::ifstream in(path);
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    *error = "not valid JSON: " + std::string(e.what());
    return out;
  }
  if (!doc.is_array()) {
    *error = "the timeline is not a JSON array";
    return out;
  }
  std::map<int64_t, std::string> tensor_of_pid;
  for (const auto& e : doc)
    if (e.value("ph", "") == "M" && e.value("name", "") == "process_name")
      tensor_of_pid[e.at("pid").get<int64_t>()] = e.at("args").at("name").get<std::string>();
  for (const auto& e : doc) {
    if (e.value("ph", "") != "X") continue;
    if (!e.contains("ts") || !e["ts"].is_number() || !e.contains("dur") || !e["dur"].is_number()) {
      *error = "an X event without numeric ts/dur: " + e.dump();
      return out;
    }
    std::string tensor = tensor_of_pid[e.value("pid", int64_t{-1})];
    if (e.contains("args") && e["args"].contains("tensor"))
      tensor = e["args"]["tensor"].get<std::string>();
    out[tensor][e.value("name", "")] = Phase{e["ts"].get<double>(), e["dur"].get<double>()};
  }
  return out;
}

// The phases of `tensor`, in order: present, dur >= 0, starts non-decreasing.
void ExpectPhases(const PhasesByTensor& tl, const std::string& tensor,
                  const std::vector<std::string>& phases) {
  auto it = tl.find(tensor);
  ASSERT_NE(it, tl.end()) << "no events for '" << tensor << "'";
  double last_ts = -1e300;
  for (const std::string& p : phases) {
    auto ph = it->second.find(p);
    ASSERT_NE(ph, it->second.end()) << "no " << p << " event for '" << tensor << "'";
    EXPECT_GE(ph->second.dur, 0.0) << tensor << " " << p;
    EXPECT_GE(ph->second.ts, last_ts) << tensor << " " << p << " starts before the previous phase";
    last_ts = ph->second.ts;
  }
}

// Runs a fixed set of operations on an engine writing a timeline to `path`
// (shut down afterwards, so the file is complete).
void RunTimelineWorkload(const std::string& path, std::vector<std::string>* reduced,
                         std::string* gathered, std::string* broadcast) {
  ctu::EnvList env = ctu::SafetyEnv();
  env.push_back({"BRAID_TIMELINE", path});
  env.push_back({"BRAID_FUSION_THRESHOLD_BYTES", std::to_string(1 << 20)});
  ctu::ScopedEnv scoped(env);
  ASSERT_EQ(braid_shutdown(), BRAID_OK);
  ASSERT_EQ(braid_init(), BRAID_OK) << braid_last_error();
  const std::vector<int64_t> lens = {17, 100, 100, 100, (1 << 20) / 4 + 64};
  std::vector<std::unique_ptr<Tensor>> ts;
  std::vector<Handle> hs(lens.size());
  for (size_t k = 0; k < lens.size(); ++k) {  // one alone, three together, one too big to fuse
    reduced->push_back(ctu::UniqueName("timeline.allreduce" + std::to_string(k)));
    ts.push_back(std::make_unique<Tensor>(BRAID_FLOAT32, std::vector<int64_t>{lens[k]}));
    ASSERT_EQ(braid_allreduce_async(reduced->back().c_str(), ts[k]->desc(), ts[k]->data(),
                                    BRAID_SUM, 1, 1, hs[k].out()),
              BRAID_OK);
    if (k == 0 || k >= 3) {
      EXPECT_EQ(hs[k].Wait(), BRAID_OK) << hs[k].Error();
    }
  }
  for (auto& h : hs) EXPECT_EQ(h.Wait(), BRAID_OK) << h.Error();
  *gathered = ctu::UniqueName("timeline.allgather");
  *broadcast = ctu::UniqueName("timeline.broadcast");
  Tensor g(BRAID_INT32, {braid_rank() + 1, 2}), b(BRAID_FLOAT64, {9});
  Handle hg, hb;
  ASSERT_EQ(braid_allgather_async(gathered->c_str(), g.desc(), hg.out()), BRAID_OK);
  ASSERT_EQ(braid_broadcast_async(broadcast->c_str(), b.desc(), 0, hb.out()), BRAID_OK);
  EXPECT_EQ(hg.Wait(), BRAID_OK) << hg.Error();
  EXPECT_EQ(hb.Wait(), BRAID_OK) << hb.Error();
  hg.Reset();
  hb.Reset();
  EXPECT_EQ(braid_shutdown(), BRAID_OK);
}

void ExpectWorkloadPhases(const std::string& file, const std::vector<std::string>& reduced,
                          const std::string& gathered, const std::string& broadcast) {
  std::string error;
  const PhasesByTensor tl = ParseTimeline(file, &error);
  ASSERT_EQ(error, "") << file;
  for (const std::string& name : reduced)
    ExpectPhases(tl, name, {"QUEUE", "NEGOTIATE", "PACK", "ALLREDUCE", "UNPACK"});
  ExpectPhases(tl, gathered, {"QUEUE", "NEGOTIATE", "ALLGATHER"});
  ExpectPhases(tl, broadcast, {"QUEUE", "NEGOTIATE", "BROADCAST"});
}

// Without %r only rank 0 writes the file.
TEST(Timeline, RankZeroFileHasEveryPhase) {
  std::string path;
  if (ctu::MyWorldRank() == 0) {
    char tmpl[] = "/tmp/braid_timeline_XXXXXX";
    const int fd = mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    close(fd);
    path = tmpl;
  }
  path = BroadcastString(path);
  std::vector<std::string> reduced;
  std::string gathered, broadcast;
  RunTimelineWorkload(path, &reduced, &gathered, &broadcast);
  if (ctu::MyWorldRank() == 0) {
    ExpectWorkloadPhases(path, reduced, gathered, broadcast);
    std::remove(path.c_str());
  }
}

// With %r every rank writes its own file.
TEST(Timeline, PerRankFiles) {
  std::string dir;
  if (ctu::MyWorldRank() == 0) {
    char tmpl[] = "/tmp/braid_timeline_dir_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir = tmpl;
  }
  dir = BroadcastString(dir);
  std::vector<std::string> reduced;
  std::string gathered, broadcast;
  RunTimelineWorkload(dir + "/timeline.%r.json", &reduced, &gathered, &broadcast);
  const std::string mine = dir + "/timeline." + std::to_string(ctu::MyWorldRank()) + ".json";
  ExpectWorkloadPhases(mine, reduced, gathered, broadcast);
  std::remove(mine.c_str());
  MPI_Barrier(MPI_COMM_WORLD);
  if (ctu::MyWorldRank() == 0) rmdir(dir.c_str());
}

}  // namespace
