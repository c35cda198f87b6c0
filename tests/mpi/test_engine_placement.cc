// Placement applied by Engine::Create (core/placement.h), checked with the
// kernel's own view of the process's threads (/proc/self/task) at every rank
// count: the process and the coordinator thread run where placement() says, the
// fusion buffer's pages are on its NUMA node, BRAID_BIND=none changes nothing,
// and without hwloc asking for a binding fails init on every rank.
#include <gtest/gtest.h>
#include <mpi.h>
#include <sched.h>

#include <dirent.h>
#include <algorithm>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/engine.h"
#include "tests/mpi/engine_test_util.h"

namespace braid {
namespace {

using engine_test::AllreduceOf;
using engine_test::WorldSize;

std::vector<int> CpusOf(pid_t tid) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(tid, sizeof set, &set) != 0) return {};
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

// The CPUs of each of this process's threads named `name`.
std::vector<std::vector<int>> ThreadsNamed(const std::string& name) {
  std::vector<std::vector<int>> out;
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return out;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream comm(std::string("/proc/self/task/") + entry->d_name + "/comm");
    std::string comm_name;
    std::getline(comm, comm_name);
    if (comm_name == name) out.push_back(CpusOf(std::stoi(entry->d_name)));
  }
  closedir(dir);
  return out;
}

std::unique_ptr<Engine> Start(BindMode bind, Status* status) {
  Config config;
  EXPECT_TRUE(LoadConfigFromEnv(&config).ok());
  config.bind = bind;
  std::unique_ptr<Engine> engine;
  *status = Engine::Create(EngineOptions(), config, &engine);
  return engine;
}

// Two tensors at once, so that the fusion buffer packs them (at np >= 2).
void FusedAllreduce(Engine* engine) {
  std::vector<float> a(4096, 1.0f), b(4096, 2.0f);
  std::shared_ptr<Handle> ha, hb;
  ASSERT_TRUE(engine->Enqueue(AllreduceOf("placement.a", &a), &ha).ok());
  ASSERT_TRUE(engine->Enqueue(AllreduceOf("placement.b", &b), &hb).ok());
  ASSERT_TRUE(ha->Wait().ok());
  ASSERT_TRUE(hb->Wait().ok());
  EXPECT_EQ(a[0], static_cast<float>(WorldSize()));
  EXPECT_EQ(b[4095], 2.0f * static_cast<float>(WorldSize()));
}

TEST(EnginePlacement, TheKernelSeesWhatPlacementReports) {
  Status status;
  std::unique_ptr<Engine> engine = Start(BindMode::kCores, &status);
  if (!TopologySupported()) {
    // Asked for and impossible: init fails on every rank, naming why.
    EXPECT_FALSE(status.ok());
    EXPECT_NE(status.message().find("no hwloc"), std::string::npos) << status.message();
    return;
  }
  ASSERT_TRUE(status.ok()) << status.ToString();
  const Placement& mine = engine->placement().mine();
  ASSERT_EQ(mine.binding, BindMode::kCores) << mine.note;
  ASSERT_FALSE(mine.cpus.empty());
  EXPECT_EQ(CpusOf(0), mine.cpus) << mine.note;
  const auto coordinators = ThreadsNamed("braid-coord");
  ASSERT_EQ(coordinators.size(), 1u);
  EXPECT_EQ(coordinators[0], mine.coordinator_cpus.empty() ? mine.cpus : mine.coordinator_cpus);
  FusedAllreduce(engine.get());
  if (WorldSize() > 1) {
    EXPECT_EQ(engine->FusionBufferNodes(), std::vector<int>{mine.numa_node});
  }
  engine->Shutdown();
}

TEST(EnginePlacement, NoneLeavesTheProcessAsItWas) {
  const std::vector<int> before = CpusOf(0);
  Status status;
  std::unique_ptr<Engine> engine = Start(BindMode::kNone, &status);
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(engine->placement().mine().binding, BindMode::kNone);
  EXPECT_TRUE(engine->placement().mine().cpus.empty());
  EXPECT_EQ(CpusOf(0), before);
  const auto coordinators = ThreadsNamed("braid-coord");
  ASSERT_EQ(coordinators.size(), 1u);
  EXPECT_EQ(coordinators[0], before);
  FusedAllreduce(engine.get());
  engine->Shutdown();
}

}  // namespace
}  // namespace braid
