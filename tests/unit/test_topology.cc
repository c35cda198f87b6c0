// Placement decisions on hand-written topologies: an hwloc synthetic CPU box (2
// packages, 4 NUMA nodes, 64 cores of 2 threads) and a saved 2-socket server with 8
// GPUs and 2 NICs (tests/data/topology/two_socket_8gpu_2nic.xml). The expected
// placement of each rank is computed here from the rules in docs/placement.md,
// not read back from the implementation.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/topology.h"

namespace braid {
namespace {

const char kCpuBox[] = "synthetic:pack:2 numa:2 core:16 pu:2";
const char kGpuServer[] = BRAID_SOURCE_DIR "/tests/data/topology/two_socket_8gpu_2nic.xml";

#define SKIP_WITHOUT_HWLOC() \
  if (!TopologySupported()) GTEST_SKIP() << "this build has no hwloc: topology tests skipped"

std::unique_ptr<Topology> Load(const std::string& source) {
  std::unique_ptr<Topology> topology;
  const Status status = Topology::Load(source, &topology);
  EXPECT_TRUE(status.ok()) << status.ToString();
  return topology;
}

std::vector<Placement> Decide(const MachineTopology& m, int ranks, BindMode mode,
                              std::vector<int> gpu_map = {}) {
  PlacementOptions options;
  options.mode = mode;
  options.gpu_map = std::move(gpu_map);
  std::vector<Placement> rows;
  const Status status = DecidePlacement(m, ranks, options, &rows);
  EXPECT_TRUE(status.ok()) << status.ToString();
  return rows;
}

std::vector<int> Range(int first, int count) {
  std::vector<int> out;
  for (int i = 0; i < count; ++i) out.push_back(first + i);
  return out;
}

// No two ranks hold the same CPU, and each rank's coordinator CPU is its own.
void ExpectNoSharedCpu(const std::vector<Placement>& rows) {
  std::map<int, int> owner;
  for (const Placement& p : rows) {
    std::set<int> mine(p.cpus.begin(), p.cpus.end());
    mine.insert(p.coordinator_cpus.begin(), p.coordinator_cpus.end());
    for (int cpu : mine) {
      auto [it, fresh] = owner.emplace(cpu, p.local_rank);
      EXPECT_TRUE(fresh) << "CPU " << cpu << " given to ranks " << it->second << " and "
                         << p.local_rank;
    }
  }
}

// --- the CPU box: synthetic, PUs numbered in order, two per core -----------------

// Core c of the box holds PUs 2c and 2c+1; NUMA node n holds cores 16n..16n+15.
std::vector<int> BoxPus(const std::vector<int>& cores) {
  std::vector<int> pus;
  for (int c : cores) pus.insert(pus.end(), {2 * c, 2 * c + 1});
  return pus;
}

TEST(Topology, SyntheticCpuBoxIsReadAsDescribed) {
  SKIP_WITHOUT_HWLOC();
  auto topology = Load(kCpuBox);
  const MachineTopology& m = topology->machine();
  EXPECT_FALSE(m.is_this_machine);
  EXPECT_EQ(m.packages, 2);
  ASSERT_EQ(m.numa_nodes.size(), 4u);
  ASSERT_EQ(m.cores.size(), 64u);
  EXPECT_TRUE(m.gpus.empty());
  for (int n = 0; n < 4; ++n) {
    EXPECT_EQ(m.numa_nodes[n].os_index, n);
    EXPECT_EQ(m.numa_nodes[n].package, n / 2);
    EXPECT_EQ(m.numa_nodes[n].cores, Range(16 * n, 16));
  }
  EXPECT_EQ(m.cores[17].pus, (std::vector<int>{34, 35}));
}

TEST(Topology, CpuBoxOneRankPerNumaNode) {
  SKIP_WITHOUT_HWLOC();
  auto topology = Load(kCpuBox);
  const auto rows = Decide(topology->machine(), 4, BindMode::kAuto);
  for (int r = 0; r < 4; ++r) {
    SCOPED_TRACE(r);
    EXPECT_EQ(rows[r].binding, BindMode::kCores);
    EXPECT_EQ(rows[r].gpu, -1);
    EXPECT_EQ(rows[r].numa_node, r);
    // 16 cores: the last is the coordinator's alone, the other 15 the framework's.
    EXPECT_EQ(rows[r].cpus, BoxPus(Range(16 * r, 15)));
    EXPECT_EQ(rows[r].coordinator_cpus, BoxPus({16 * r + 15}));
  }
  ExpectNoSharedCpu(rows);
}

TEST(Topology, CpuBoxTwoRanksGoToDifferentPackages) {
  SKIP_WITHOUT_HWLOC();
  auto topology = Load(kCpuBox);
  const auto rows = Decide(topology->machine(), 2, BindMode::kAuto);
  EXPECT_EQ(rows[0].numa_node, 0);
  EXPECT_EQ(rows[1].numa_node, 2);  // the first node of package 1
  EXPECT_EQ(rows[1].cpus, BoxPus(Range(32, 15)));
  ExpectNoSharedCpu(rows);
}

TEST(Topology, CpuBoxEightRanksSplitEachNode) {
  SKIP_WITHOUT_HWLOC();
  auto topology = Load(kCpuBox);
  const auto rows = Decide(topology->machine(), 8, BindMode::kAuto);
  for (int r = 0; r < 8; ++r) {
    SCOPED_TRACE(r);
    EXPECT_EQ(rows[r].numa_node, r / 2);
    EXPECT_EQ(rows[r].cpus, BoxPus(Range(8 * r, 7)));
    EXPECT_EQ(rows[r].coordinator_cpus, BoxPus({8 * r + 7}));
  }
  ExpectNoSharedCpu(rows);
}

TEST(Topology, CpuBoxOneCoreARankBindsNumaNodesUnderAuto) {
  SKIP_WITHOUT_HWLOC();
  auto topology = Load(kCpuBox);
  const auto rows = Decide(topology->machine(), 64, BindMode::kAuto);
  for (int r = 0; r < 64; ++r) {
    EXPECT_EQ(rows[r].binding, BindMode::kNuma);
    EXPECT_EQ(rows[r].numa_node, r / 16);
    EXPECT_EQ(rows[r].cpus, BoxPus(Range(16 * (r / 16), 16)));
    EXPECT_TRUE(rows[r].coordinator_cpus.empty());
  }
  const auto cores = Decide(topology->machine(), 64, BindMode::kCores);
  for (int r = 0; r < 64; ++r) {
    EXPECT_EQ(cores[r].binding, BindMode::kCores);
    EXPECT_EQ(cores[r].cpus, BoxPus({r}));  // one core: shared with the coordinator
    EXPECT_EQ(cores[r].coordinator_cpus, BoxPus({r}));
  }
  ExpectNoSharedCpu(cores);
}

TEST(Topology, CpuBoxMoreRanksThanCoresShareAndSaySo) {
  SKIP_WITHOUT_HWLOC();
  auto topology = Load(kCpuBox);
  const auto rows = Decide(topology->machine(), 65, BindMode::kCores);
  int shared = 0;
  for (const Placement& p : rows) shared += p.note.find("shared") != std::string::npos;
  EXPECT_EQ(shared, 17);  // node 0 holds 17 ranks on 16 cores; the others 16 on 16
  for (const Placement& p : rows) EXPECT_EQ(p.cpus.size(), 2u);
}

TEST(Topology, NoneBindsNothing) {
  SKIP_WITHOUT_HWLOC();
  auto topology = Load(kCpuBox);
  for (const Placement& p : Decide(topology->machine(), 4, BindMode::kNone)) {
    EXPECT_EQ(p.binding, BindMode::kNone);
    EXPECT_TRUE(p.cpus.empty());
    EXPECT_TRUE(p.coordinator_cpus.empty());
  }
}

TEST(Topology, NumaModeGivesEachRankItsWholeNode) {
  SKIP_WITHOUT_HWLOC();
  auto topology = Load(kCpuBox);
  const auto rows = Decide(topology->machine(), 8, BindMode::kNuma);
  for (int r = 0; r < 8; ++r) EXPECT_EQ(rows[r].cpus, BoxPus(Range(16 * (r / 2), 16)));
}

// --- the GPU server: 2 sockets of 24 cores x 2 threads, GPUs 0-3 and mlx5_0 behind
// socket 0, GPUs 4-7 and mlx5_1 behind socket 1 ------------------------------------

// Core k of socket s holds PUs 24s+k and 48+24s+k (Linux numbering).
std::vector<int> ServerPus(int socket, const std::vector<int>& cores) {
  std::vector<int> pus;
  for (int k : cores) pus.insert(pus.end(), {24 * socket + k, 48 + 24 * socket + k});
  std::sort(pus.begin(), pus.end());
  return pus;
}

const char* const kGpuBusIds[] = {"0000:18:00.0", "0000:2a:00.0", "0000:3a:00.0", "0000:5d:00.0",
                                  "0000:9a:00.0", "0000:ab:00.0", "0000:ba:00.0", "0000:db:00.0"};

TEST(Topology, GpuServerIsReadAsSaved) {
  SKIP_WITHOUT_HWLOC();
  auto topology = Load(kGpuServer);
  const MachineTopology& m = topology->machine();
  EXPECT_EQ(m.host, "gpu-server-a");
  EXPECT_FALSE(m.is_this_machine);
  EXPECT_EQ(m.packages, 2);
  ASSERT_EQ(m.cores.size(), 48u);
  ASSERT_EQ(m.gpus.size(), 8u);
  ASSERT_EQ(m.nics.size(), 2u);
  for (int g = 0; g < 8; ++g) {
    EXPECT_EQ(m.gpus[g].name, "cuda" + std::to_string(g));
    EXPECT_EQ(m.gpus[g].pci_bus_id, kGpuBusIds[g]);
    EXPECT_EQ(m.gpus[g].numa_node, g / 4);
    EXPECT_EQ(m.gpus[g].near_cores, Range(24 * (g / 4), 24));
  }
  EXPECT_EQ(m.nics[0].name, "mlx5_0");
  EXPECT_EQ(m.nics[0].numa_node, 0);
  EXPECT_EQ(m.nics[1].name, "mlx5_1");
  EXPECT_EQ(m.nics[1].numa_node, 1);
}

// Ranks driving GPUs of the same socket divide its 24 cores in local-rank order.
void ExpectServerRank(const Placement& p, int gpu, int slot, int sharing) {
  SCOPED_TRACE("local rank " + std::to_string(p.local_rank));
  const int socket = gpu / 4, per_rank = 24 / sharing;
  EXPECT_EQ(p.gpu, gpu);
  EXPECT_EQ(p.gpu_pci_bus_id, kGpuBusIds[gpu]);
  EXPECT_EQ(p.binding, BindMode::kCores);
  EXPECT_EQ(p.numa_node, socket);
  EXPECT_EQ(p.nic, socket == 0 ? "mlx5_0" : "mlx5_1");
  const int first = slot * per_rank, last = first + per_rank - 1;
  EXPECT_EQ(p.coordinator_cpus, ServerPus(socket, {last}));
  const int framework = per_rank >= 4 ? per_rank - 1 : per_rank;
  EXPECT_EQ(p.cpus, ServerPus(socket, Range(first, framework)));
}

TEST(Topology, GpuServerEightRanks) {
  SKIP_WITHOUT_HWLOC();
  auto topology = Load(kGpuServer);
  const auto rows = Decide(topology->machine(), 8, BindMode::kAuto);
  for (int r = 0; r < 8; ++r) ExpectServerRank(rows[r], r, r % 4, 4);
  ExpectNoSharedCpu(rows);
}

TEST(Topology, GpuServerFourRanksStayNearTheirGpus) {
  SKIP_WITHOUT_HWLOC();
  auto topology = Load(kGpuServer);
  const auto rows = Decide(topology->machine(), 4, BindMode::kAuto);
  for (int r = 0; r < 4; ++r) ExpectServerRank(rows[r], r, r, 4);
  ExpectNoSharedCpu(rows);
}

TEST(Topology, GpuServerSixteenRanksTwoPerGpu) {
  SKIP_WITHOUT_HWLOC();
  auto topology = Load(kGpuServer);
  const auto rows = Decide(topology->machine(), 16, BindMode::kAuto);
  for (int r = 0; r < 16; ++r) {
    const int gpu = r % 8;
    // Socket s serves ranks s*4..s*4+3 and 8+s*4..8+s*4+3, eight in all.
    const int slot = (r % 4) + (r >= 8 ? 4 : 0);
    ExpectServerRank(rows[r], gpu, slot, 8);
  }
  ExpectNoSharedCpu(rows);
}

TEST(Topology, GpuMapChoosesTheGpuAndTheCoresFollow) {
  SKIP_WITHOUT_HWLOC();
  auto topology = Load(kGpuServer);
  const auto rows = Decide(topology->machine(), 2, BindMode::kAuto, {7, 0});
  EXPECT_EQ(rows[0].gpu, 7);
  EXPECT_EQ(rows[0].numa_node, 1);
  EXPECT_EQ(rows[0].cpus, ServerPus(1, Range(0, 23)));
  EXPECT_EQ(rows[1].gpu, 0);
  EXPECT_EQ(rows[1].numa_node, 0);

  PlacementOptions options;
  options.gpu_map = {8};
  std::vector<Placement> out;
  const Status status = DecidePlacement(topology->machine(), 1, options, &out);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("GPU 8"), std::string::npos) << status.message();
}

TEST(Topology, TableNamesEveryRank) {
  SKIP_WITHOUT_HWLOC();
  auto topology = Load(kGpuServer);
  const auto rows = Decide(topology->machine(), 8, BindMode::kAuto);
  const std::string table = FormatPlacementTable(topology->machine(), rows);
  EXPECT_NE(table.find("8 GPU(s)"), std::string::npos) << table;
  EXPECT_NE(table.find("0000:db:00.0"), std::string::npos) << table;
  EXPECT_NE(table.find("0-4,48-52"), std::string::npos) << table;  // rank 0's CPUs
  EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 2 + 8) << table;
}

TEST(Topology, BadSourcesFailWithTheirName) {
  SKIP_WITHOUT_HWLOC();
  std::unique_ptr<Topology> topology;
  Status status = Topology::Load("/nonexistent/topology.xml", &topology);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("/nonexistent/topology.xml"), std::string::npos);
  status = Topology::Load("synthetic:not a topology", &topology);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
}

TEST(Topology, CpuListsAreCompact) {
  EXPECT_EQ(FormatCpuList({}), "-");
  EXPECT_EQ(FormatCpuList({3, 0, 1, 2, 48, 49, 7}), "0-3,7,48-49");
}

TEST(Topology, WithoutHwlocLoadSaysWhy) {
  if (TopologySupported()) GTEST_SKIP() << "this build has hwloc";
  std::unique_ptr<Topology> topology;
  const Status status = Topology::Load("", &topology);
  EXPECT_NE(status.message().find("no hwloc"), std::string::npos) << status.message();
}

}  // namespace
}  // namespace braid
