// The placement rules (docs/placement.md): which GPU, cores and NUMA node each
// local rank gets. Pure functions of a MachineTopology.
#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "core/topology.h"

namespace braid {
namespace {

// A rank's block of cores must hold this many before the coordinator thread gets
// one of them to itself; with fewer, the framework's threads would lose too much.
constexpr size_t kCoresToReserveCoordinator = 4;

std::vector<int> AllCores(const MachineTopology& machine) {
  std::vector<int> all(machine.cores.size());
  for (size_t c = 0; c < all.size(); ++c) all[c] = static_cast<int>(c);
  return all;
}

std::vector<int> NodeCores(const MachineTopology& machine, int numa_os_index) {
  for (const TopologyNumaNode& node : machine.numa_nodes)
    if (node.os_index == numa_os_index) return node.cores;
  return AllCores(machine);
}

// The cores each rank is drawn from (its domain) and its GPU.
Status ChooseDomains(const MachineTopology& machine, int local_size,
                     const PlacementOptions& options, std::vector<Placement>* rows,
                     std::vector<std::vector<int>>* domains) {
  const int gpus = static_cast<int>(machine.gpus.size());
  for (int r = 0; r < local_size; ++r) {
    Placement& row = (*rows)[r];
    row.local_rank = r;
    std::vector<int>& domain = (*domains)[r];
    if (!options.gpu_map.empty())
      row.gpu = options.gpu_map[r % options.gpu_map.size()];
    else if (gpus > 0)
      row.gpu = r % gpus;
    if (row.gpu >= gpus) {
      return InvalidArgument("BRAID_GPU_MAP names GPU " + std::to_string(row.gpu) + " but " +
                             machine.host + " has " + std::to_string(gpus) + " GPU(s)");
    }
    if (row.gpu >= 0) {
      const TopologyDevice& gpu = machine.gpus[row.gpu];
      row.gpu_pci_bus_id = gpu.pci_bus_id;
      domain = gpu.near_cores.empty() ? AllCores(machine) : gpu.near_cores;
    } else if (!machine.numa_nodes.empty()) {
      // Ranks spread evenly over the NUMA nodes in order, so that ranks on the
      // same node are neighbours and, with fewer ranks than nodes, packages fill
      // alternately.
      const size_t nodes = machine.numa_nodes.size();
      const size_t node = static_cast<size_t>(r) * nodes / static_cast<size_t>(local_size);
      domain = machine.numa_nodes[node].cores;
    } else {
      domain = AllCores(machine);
    }
  }
  return Status::OK();
}

// Divides each domain's cores among the ranks that share it, smallest domains
// first, so no two ranks share a core while the domains allow it.
void DivideCores(const std::vector<std::vector<int>>& domains, std::vector<Placement>* rows,
                 std::vector<std::vector<int>>* blocks) {
  std::map<std::vector<int>, std::vector<int>> ranks_of;  // domain -> its ranks
  for (size_t r = 0; r < domains.size(); ++r) ranks_of[domains[r]].push_back(static_cast<int>(r));
  std::vector<const std::pair<const std::vector<int>, std::vector<int>>*> order;
  for (const auto& entry : ranks_of) order.push_back(&entry);
  std::stable_sort(order.begin(), order.end(),
                   [](const auto* a, const auto* b) { return a->first.size() < b->first.size(); });
  std::set<int> taken;
  for (const auto* entry : order) {
    const std::vector<int>& ranks = entry->second;
    std::vector<int> free;
    for (int core : entry->first)
      if (taken.count(core) == 0) free.push_back(core);
    const bool shared = free.size() < ranks.size();
    const std::vector<int>& pool = shared ? entry->first : free;
    const size_t n = ranks.size(), cores = pool.size();
    for (size_t i = 0; i < n; ++i) {
      std::vector<int>& block = (*blocks)[ranks[i]];
      if (cores == 0) continue;
      if (shared) {
        block = {pool[i * cores / n]};
        (*rows)[ranks[i]].note =
            std::to_string(n) + " ranks on " + std::to_string(cores) + " core(s): cores are shared";
      } else {
        block.assign(pool.begin() + i * cores / n, pool.begin() + (i + 1) * cores / n);
      }
      taken.insert(block.begin(), block.end());
    }
  }
}

std::vector<int> Pus(const MachineTopology& machine, const std::vector<int>& cores) {
  std::vector<int> pus;
  for (int c : cores)
    pus.insert(pus.end(), machine.cores[c].pus.begin(), machine.cores[c].pus.end());
  std::sort(pus.begin(), pus.end());
  return pus;
}

void BindToCores(const MachineTopology& machine, const std::vector<int>& block, Placement* row) {
  row->binding = BindMode::kCores;
  const int coordinator_core = block.back();
  row->coordinator_cpus = machine.cores[coordinator_core].pus;
  std::vector<int> framework = block;
  if (block.size() >= kCoresToReserveCoordinator) framework.pop_back();
  row->cpus = Pus(machine, framework);
}

void BindToNode(const MachineTopology& machine, Placement* row) {
  const std::vector<int> node_cores = NodeCores(machine, row->numa_node);
  if (node_cores.size() == machine.cores.size()) {
    // Binding to every core restricts nothing, and memory has one place to go.
    row->binding = BindMode::kNone;
    row->numa_node = -1;
    row->note += row->note.empty() ? "one NUMA node: not bound" : ", one NUMA node: not bound";
    return;
  }
  row->binding = BindMode::kNuma;
  row->cpus = Pus(machine, node_cores);
}

// The NIC closest to the rank's cores; ranks near several take turns.
void ChooseNic(const MachineTopology& machine, const std::vector<int>& block, Placement* row) {
  std::vector<const TopologyDevice*> near;
  for (const TopologyDevice& nic : machine.nics) {
    if (block.empty()) break;
    const auto& cores = nic.near_cores;
    if (std::find(cores.begin(), cores.end(), block.front()) != cores.end()) near.push_back(&nic);
  }
  if (!near.empty()) row->nic = near[row->local_rank % near.size()]->name;
}

}  // namespace

const char* BindModeName(BindMode mode) {
  switch (mode) {
    case BindMode::kAuto:
      return "auto";
    case BindMode::kNone:
      return "none";
    case BindMode::kCores:
      return "cores";
    case BindMode::kNuma:
      return "numa";
  }
  return "?";
}

bool ParseBindMode(const std::string& text, BindMode* mode) {
  for (BindMode m : {BindMode::kAuto, BindMode::kNone, BindMode::kCores, BindMode::kNuma}) {
    if (text == BindModeName(m)) {
      *mode = m;
      return true;
    }
  }
  return false;
}

Status DecidePlacement(const MachineTopology& machine, int local_size,
                       const PlacementOptions& options, std::vector<Placement>* out) {
  if (local_size < 1) return InvalidArgument("placement needs at least one local rank");
  for (int gpu : options.gpu_map)
    if (gpu < 0) return InvalidArgument("BRAID_GPU_MAP holds a negative GPU ordinal");
  std::vector<Placement> rows(local_size);
  std::vector<std::vector<int>> domains(local_size), blocks(local_size);
  BRAID_RETURN_IF_ERROR(ChooseDomains(machine, local_size, options, &rows, &domains));
  DivideCores(domains, &rows, &blocks);
  bool every_rank_two_cores = true;
  for (const auto& block : blocks) every_rank_two_cores &= block.size() >= 2;
  for (int r = 0; r < local_size; ++r) {
    Placement& row = rows[r];
    const std::vector<int>& block = blocks[r];
    ChooseNic(machine, block, &row);
    if (block.empty() || options.mode == BindMode::kNone) {
      row.binding = BindMode::kNone;
      if (options.mode == BindMode::kNone) row.note = "BRAID_BIND=none";
      continue;
    }
    row.numa_node = NumaNodeOf(machine, Pus(machine, block));
    BindMode mode = options.mode;
    if (mode == BindMode::kAuto) {
      mode = every_rank_two_cores ? BindMode::kCores : BindMode::kNuma;
      if (!every_rank_two_cores && row.note.empty()) row.note = "under 2 cores a rank";
    }
    if (mode == BindMode::kCores)
      BindToCores(machine, block, &row);
    else
      BindToNode(machine, &row);
  }
  *out = std::move(rows);
  return Status::OK();
}

int NumaNodeOf(const MachineTopology& machine, const std::vector<int>& cpus) {
  std::map<int, int> count;  // NUMA node -> CPUs of `cpus` in it
  for (const TopologyCore& core : machine.cores)
    for (int pu : core.pus)
      if (std::find(cpus.begin(), cpus.end(), pu) != cpus.end()) ++count[core.numa_node];
  int best = -1, most = 0;
  for (const auto& [node, n] : count)
    if (node >= 0 && n > most) best = node, most = n;
  return best;
}

std::string FormatCpuList(const std::vector<int>& cpus) {
  if (cpus.empty()) return "-";
  std::vector<int> sorted = cpus;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::ostringstream s;
  for (size_t i = 0; i < sorted.size();) {
    size_t j = i;
    while (j + 1 < sorted.size() && sorted[j + 1] == sorted[j] + 1) ++j;
    if (i > 0) s << ",";
    s << sorted[i];
    if (j > i) s << "-" << sorted[j];
    i = j + 1;
  }
  return s.str();
}

std::string FormatPlacementTable(const MachineTopology& machine,
                                 const std::vector<Placement>& rows) {
  std::ostringstream s;
  s << "# placement on " << machine.host << " (" << machine.source << "): " << machine.packages
    << " package(s), " << machine.numa_nodes.size() << " NUMA node(s), " << machine.cores.size()
    << " cores, " << machine.gpus.size() << " GPU(s), " << machine.nics.size() << " NIC(s)\n";
  char line[512];
  std::snprintf(line, sizeof line, "%-16s %5s %4s %-13s %-6s %-18s %5s %4s %-8s %s\n", "host",
                "local", "gpu", "gpu_pci", "bind", "cpus", "coord", "numa", "nic", "note");
  s << line;
  for (const Placement& p : rows) {
    const std::string gpu = p.gpu >= 0 ? std::to_string(p.gpu) : "-";
    const std::string numa = p.numa_node >= 0 ? std::to_string(p.numa_node) : "-";
    std::snprintf(line, sizeof line, "%-16s %5d %4s %-13s %-6s %-18s %5s %4s %-8s %s\n",
                  machine.host.c_str(), p.local_rank, gpu.c_str(),
                  p.gpu_pci_bus_id.empty() ? "-" : p.gpu_pci_bus_id.c_str(),
                  BindModeName(p.binding), FormatCpuList(p.cpus).c_str(),
                  FormatCpuList(p.coordinator_cpus).c_str(), numa.c_str(),
                  p.nic.empty() ? "-" : p.nic.c_str(), p.note.c_str());
    const std::string text = line;
    s << text.substr(0, text.find_last_not_of(" \n") + 1) << "\n";  // no trailing blanks
  }
  return s.str();
}

}  // namespace braid
