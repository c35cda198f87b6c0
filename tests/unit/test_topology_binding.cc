// Binding on this machine, checked with the kernel's own answers
// (sched_getaffinity, get_mempolicy) rather than hwloc's.
#include <gtest/gtest.h>
#include <linux/mempolicy.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "core/topology.h"

namespace braid {
namespace {

#define SKIP_WITHOUT_HWLOC() \
  if (!TopologySupported()) GTEST_SKIP() << "this build has no hwloc: topology tests skipped"

// The calling thread's CPUs, from the kernel.
std::vector<int> KernelCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  EXPECT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

std::unique_ptr<Topology> Live() {
  std::unique_ptr<Topology> topology;
  const Status status = Topology::Load("", &topology);
  EXPECT_TRUE(status.ok()) << status.ToString();
  return topology;
}

TEST(TopologyBinding, LiveTopologyIsThisMachine) {
  SKIP_WITHOUT_HWLOC();
  auto topology = Live();
  ASSERT_TRUE(topology);
  EXPECT_TRUE(topology->machine().is_this_machine);
  EXPECT_EQ(topology->machine().source, "this machine");
  EXPECT_FALSE(topology->machine().cores.empty());
  std::vector<int> cpus;
  ASSERT_TRUE(topology->ThreadCpus(&cpus).ok());
  EXPECT_EQ(cpus, KernelCpus());
}

TEST(TopologyBinding, BindThreadPinsOnlyThatThread) {
  SKIP_WITHOUT_HWLOC();
  auto topology = Live();
  const std::vector<int> before = KernelCpus();
  const int target = before.back();
  std::vector<int> inside;
  Status bound;
  std::thread worker([&] {
    bound = topology->BindThread({target});
    inside = KernelCpus();
  });
  worker.join();
  ASSERT_TRUE(bound.ok()) << bound.ToString();
  EXPECT_EQ(inside, std::vector<int>{target});
  EXPECT_EQ(KernelCpus(), before);  // the caller's thread is untouched
}

// In a child process, so that the test process keeps its affinity: binding the
// process moves the threads that already run as well as the caller.
TEST(TopologyBinding, BindProcessMovesEveryThread) {
  SKIP_WITHOUT_HWLOC();
  auto topology = Live();
  const int target = KernelCpus().front();
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::atomic<bool> bound{false};
    std::vector<int> seen;
    std::thread earlier([&] {
      while (!bound) std::this_thread::yield();
      seen = KernelCpus();
    });
    const bool ok = topology->BindProcess({target}).ok();
    bound = true;
    earlier.join();
    const std::vector<int> one = {target};
    _exit(ok && KernelCpus() == one && seen == one ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the child's threads were not all on CPU " << target;
}

TEST(TopologyBinding, BindMemoryPlacesPagesOnTheNode) {
  SKIP_WITHOUT_HWLOC();
  auto topology = Live();
  const MachineTopology& m = topology->machine();
  const int node = m.numa_nodes.empty() ? 0 : m.numa_nodes.back().os_index;
  const size_t bytes = 1 << 20;
  void* area = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(area, MAP_FAILED);
  ASSERT_TRUE(topology->BindMemory(area, bytes, node).ok());
  std::memset(area, 1, bytes);
  // The policy of the area, as the kernel holds it.
  int mode = -1;
  unsigned long mask[16] = {0};
  ASSERT_EQ(syscall(SYS_get_mempolicy, &mode, mask, sizeof mask * 8, area, MPOL_F_ADDR), 0);
  // hwloc asks for the node without making it strict: the kernel records a preferred
  // node (MPOL_PREFERRED_MANY, 5, on kernels from 5.15; MPOL_PREFERRED before), so a
  // full node spills over instead of failing the allocation.
  EXPECT_TRUE(mode == MPOL_BIND || mode == MPOL_PREFERRED || mode == 5) << "mode " << mode;
  EXPECT_TRUE(mask[node / 64] & (1ul << (node % 64))) << "node " << node << " not in the mask";
  // Where a touched page lives.
  int where = -1;
  char* last_page = static_cast<char*>(area) + bytes - 4096;
  ASSERT_EQ(syscall(SYS_get_mempolicy, &where, nullptr, 0, last_page, MPOL_F_NODE | MPOL_F_ADDR),
            0);
  EXPECT_EQ(where, node);
  std::vector<int> nodes;
  ASSERT_TRUE(topology->MemoryNodes(area, bytes, &nodes).ok());
  EXPECT_EQ(nodes, std::vector<int>{node});
  munmap(area, bytes);
}

TEST(TopologyBinding, AnotherMachineIsPlannedNotBound) {
  SKIP_WITHOUT_HWLOC();
  std::unique_ptr<Topology> topology;
  ASSERT_TRUE(
      Topology::Load(BRAID_SOURCE_DIR "/tests/data/topology/two_socket_8gpu_2nic.xml", &topology)
          .ok());
  const Status status = topology->BindProcess({0});
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("another machine"), std::string::npos) << status.message();
}

}  // namespace
}  // namespace braid
