// Topology-aware placement: where each local rank runs, which GPU it drives, which
// cores its coordinator thread and its framework's threads use, and which NUMA
// node holds the host buffers braid owns.
//
// Three steps, kept apart so that the decision can be tested on machines that are
// not this one:
// - Discover: Topology::Load reads the live machine, a saved hwloc XML file
//   (BRAID_TOPOLOGY_FILE) or an hwloc synthetic description into a
//   MachineTopology, a plain description with no hwloc type in it.
// - Decide: DecidePlacement turns a MachineTopology and the number of local
//   ranks into one Placement per local rank (the rules are in docs/placement.md).
//   Pure: no system call.
// - Apply: Topology::BindProcess, BindThread and BindMemory do what a Placement
//   says on this process, inside whatever affinity the launcher already set.
//
// This header and topology_plan.cc never include hwloc.h; topology_hwloc.cc is
// the only file that does, and topology_none.cc replaces it in a build without
// hwloc (every Load then fails with a message saying so).
//
// Threading: MachineTopology and Placement are plain values. A Topology may be
// used from any thread; hwloc's binding calls are thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace braid {

// BRAID_BIND: what placement binds.
enum class BindMode {
  kAuto,   // cores when every rank gets two or more, else the NUMA node
  kNone,   // nothing: the process keeps the affinity it was started with
  kCores,  // each rank its own cores, the coordinator thread one of them
  kNuma,   // each rank the cores of its NUMA node, shared with the node's other ranks
};
const char* BindModeName(BindMode mode);
bool ParseBindMode(const std::string& text, BindMode* mode);

// Whether this build can discover topologies (it was built with hwloc).
bool TopologySupported();

struct TopologyCore {
  int package = 0;       // logical index of its package
  int numa_node = -1;    // os index of its NUMA node (-1: none known)
  std::vector<int> pus;  // os indexes of its hardware threads
};

struct TopologyNumaNode {
  int os_index = 0;
  int package = 0;         // logical index of the package it belongs to
  std::vector<int> cores;  // indexes into MachineTopology::cores
};

// A GPU or a network interface, with the cores closest to it.
struct TopologyDevice {
  std::string name;             // "cuda0", "mlx5_0", or the PCI bus id when hwloc names none
  std::string pci_bus_id;       // "0000:18:00.0"
  std::string model;            // "" when unknown
  std::vector<int> near_cores;  // cores of its closest non-I/O ancestor (package, NUMA node)
  int numa_node = -1;           // os index of the NUMA node closest to it (-1: unknown)
};

struct MachineTopology {
  std::string host;             // the topology's host name
  std::string source;           // "this machine", "file <path>", "synthetic <text>"
  bool is_this_machine = true;  // false: a file or synthetic; plan, never bind
  int packages = 1;
  std::vector<TopologyNumaNode> numa_nodes;
  std::vector<TopologyCore> cores;   // in hwloc's logical order, only allowed ones
  std::vector<TopologyDevice> gpus;  // indexed by CUDA ordinal
  std::vector<TopologyDevice> nics;
};

struct PlacementOptions {
  BindMode mode = BindMode::kAuto;
  // GPU ordinal for local rank r: gpu_map[r % size]; empty: r mod the GPU count.
  std::vector<int> gpu_map;
};

// One local rank's place. CPU numbers are os indexes (what taskset and
// sched_getaffinity print).
struct Placement {
  int local_rank = 0;
  int gpu = -1;                        // CUDA ordinal (-1: no GPU)
  std::string gpu_pci_bus_id;          // "" when no GPU
  BindMode binding = BindMode::kNone;  // what is bound: none, cores or numa
  std::vector<int> cpus;               // the process's CPUs (empty: not bound)
  std::vector<int> coordinator_cpus;   // the coordinator thread's core (empty: as the process)
  int numa_node = -1;                  // where braid's host buffers go (-1: anywhere)
  std::string nic;                     // the closest network interface ("" when none)
  std::string note;                    // why the rules' first choice was not taken
};

// One Placement per local rank (index = local rank) on `machine`; fails when the
// options name a GPU the machine does not have.
Status DecidePlacement(const MachineTopology& machine, int local_size,
                       const PlacementOptions& options, std::vector<Placement>* out);

// The NUMA node (os index) holding most of `cpus` (os indexes); -1 when none is known.
int NumaNodeOf(const MachineTopology& machine, const std::vector<int>& cpus);
// "0-3,48-51" (os indexes, sorted); "-" when empty.
std::string FormatCpuList(const std::vector<int>& cpus);
// The table `braidrun --print-placement` prints: one line per local rank.
std::string FormatPlacementTable(const MachineTopology& machine,
                                 const std::vector<Placement>& rows);

// Where to read the topology from: "" is this machine; "synthetic:<hwloc
// synthetic description>" builds one; anything else is an hwloc XML file.
class Topology {
 public:
  static Status Load(const std::string& source, std::unique_ptr<Topology>* out);
  ~Topology();
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;

  const MachineTopology& machine() const;

  // The CPUs this process may run on now (its affinity), as os indexes.
  Status ProcessCpus(std::vector<int>* cpus) const;
  // The CPUs the calling thread may run on now.
  Status ThreadCpus(std::vector<int>* cpus) const;
  // Binds every thread of the process to `cpus`.
  Status BindProcess(const std::vector<int>& cpus) const;
  // Binds the calling thread to `cpus`.
  Status BindThread(const std::vector<int>& cpus) const;
  // Places [data, data + bytes) on NUMA node `numa_node` (os index): pages not
  // yet touched are allocated there, pages already there are moved.
  Status BindMemory(void* data, size_t bytes, int numa_node) const;
  // The NUMA nodes (os indexes) holding the touched pages of [data, data + bytes).
  Status MemoryNodes(const void* data, size_t bytes, std::vector<int>* nodes) const;

 private:
  struct Impl;
  explicit Topology(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace braid
