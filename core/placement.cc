#include "core/placement.h"

#include <algorithm>
#include <map>
#include <mutex>

#include "common/logging.h"

namespace braid {
namespace {

std::vector<int> MachinePus(const MachineTopology& m) {
  std::vector<int> pus;
  for (const TopologyCore& core : m.cores) pus.insert(pus.end(), core.pus.begin(), core.pus.end());
  std::sort(pus.begin(), pus.end());
  return pus;
}

void Unbind(Placement* p, const std::string& why) {
  p->binding = BindMode::kNone;
  p->cpus.clear();
  p->coordinator_cpus.clear();
  p->numa_node = -1;
  p->note = why;
}

}  // namespace

Status RankPlacement::Create(const Config& config, const WorldInfo& world,
                             std::unique_ptr<RankPlacement>* out) {
  std::unique_ptr<RankPlacement> p(new RankPlacement);
  p->mine_.local_rank = world.local_rank;
  const bool asked = config.bind == BindMode::kCores || config.bind == BindMode::kNuma ||
                     !config.topology_file.empty();
  const Status loaded = Topology::Load(config.topology_file, &p->topology_);
  if (!loaded.ok()) {
    if (asked) return Status(loaded.code(), "placement: " + loaded.message());
    if (TopologySupported()) {
      BRAID_LOG(Warning) << "placement skipped: " << loaded.message();
    } else {
      BRAID_LOG(Debug) << "placement skipped: " << loaded.message();
    }
    p->topology_.reset();
    Unbind(&p->mine_, loaded.message());
    *out = std::move(p);
    return Status::OK();
  }
  PlacementOptions options;
  options.mode = config.bind;
  options.gpu_map = config.gpu_map;
  BRAID_RETURN_IF_ERROR(
      DecidePlacement(p->topology_->machine(), world.local_size, options, &p->host_));
  p->mine_ = p->host_[world.local_rank];
  const Status applied = p->Apply();
  if (!applied.ok()) {
    if (config.bind != BindMode::kAuto)
      return Status(applied.code(), "placement: " + applied.message());
    BRAID_LOG(Warning) << "placement not applied: " << applied.message();
    Unbind(&p->mine_, applied.message());
  }
  const MachineTopology& m = p->topology_->machine();
  if (world.local_rank == 0) {
    BRAID_LOG(Info) << "\n" << FormatPlacementTable(m, p->host_);
  }
  if (p->mine_.cpus != p->host_[world.local_rank].cpus || !applied.ok()) {
    BRAID_LOG(Info) << "\n" << FormatPlacementTable(m, {p->mine_});
  }
  *out = std::move(p);
  return Status::OK();
}

Status RankPlacement::Apply() {
  Placement& p = mine_;
  if (p.binding == BindMode::kNone) return Status::OK();
  const MachineTopology& m = topology_->machine();
  if (!m.is_this_machine) {
    Unbind(&p, "planned from " + m.source + ", another machine: not bound");
    return Status::OK();
  }
  // What an earlier engine of this process bound it to is not the launcher's choice.
  static std::mutex mutex;
  static std::vector<int> bound_by_braid;
  std::lock_guard<std::mutex> lock(mutex);
  std::vector<int> current;
  BRAID_RETURN_IF_ERROR(topology_->ProcessCpus(&current));
  if (current.size() < MachinePus(m).size() && current != bound_by_braid) {
    // The launcher (mpirun --bind-to, taskset, a cgroup) chose already: work inside it.
    p.cpus = current;
    bool inside = !p.coordinator_cpus.empty();
    for (int cpu : p.coordinator_cpus)
      inside &= std::find(current.begin(), current.end(), cpu) != current.end();
    if (p.binding == BindMode::kCores && !inside) p.coordinator_cpus = {current.back()};
    if (p.binding != BindMode::kCores) p.coordinator_cpus.clear();
    p.numa_node = NumaNodeOf(m, current);
    p.note = "inside the launcher's binding";
    return Status::OK();
  }
  BRAID_RETURN_IF_ERROR(topology_->BindProcess(p.cpus));
  bound_by_braid = p.cpus;
  return Status::OK();
}

void RankPlacement::BindCoordinatorThread() const {
  if (!topology_ || mine_.binding != BindMode::kCores || mine_.coordinator_cpus.empty()) return;
  const Status bound = topology_->BindThread(mine_.coordinator_cpus);
  if (!bound.ok()) {
    BRAID_LOG(Warning) << "placement: coordinator thread: " << bound.message();
  }
}

void RankPlacement::PlaceMemory(void* data, size_t bytes) const {
  if (!topology_ || mine_.binding == BindMode::kNone || mine_.numa_node < 0) return;
  const Status placed = topology_->BindMemory(data, bytes, mine_.numa_node);
  if (!placed.ok()) {
    BRAID_LOG(Warning) << "placement: " << placed.message();
  }
}

std::vector<int> RankPlacement::MemoryNodes(const void* data, size_t bytes) const {
  std::vector<int> nodes;
  if (topology_ && topology_->machine().is_this_machine)
    (void)topology_->MemoryNodes(data, bytes, &nodes);
  return nodes;
}

}  // namespace braid
