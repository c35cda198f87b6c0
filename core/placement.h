// This rank's placement at init: the topology read (core/topology.h), the host's
// placement decided, and this rank's part of it applied inside whatever affinity
// the launcher set. What was really done is kept for `braid.placement()` and the
// log.
//
// Threading: built once by the engine before its coordinator starts; afterwards
// const and safe from any thread.
#pragma once

#include <memory>
#include <vector>

#include "collectives/transport.h"
#include "common/status.h"
#include "core/config.h"
#include "core/topology.h"

namespace braid {

class RankPlacement {
 public:
  // Decides and applies the placement of local rank `world.local_rank`. Fails
  // only when the user asked for something that cannot be done (BRAID_BIND=cores
  // or numa, or BRAID_TOPOLOGY_FILE, without hwloc or with a topology that cannot
  // be read or applied; a bad BRAID_GPU_MAP); under BRAID_BIND=auto a problem is a
  // warning and the rank stays as it was started.
  static Status Create(const Config& config, const WorldInfo& world,
                       std::unique_ptr<RankPlacement>* out);

  // What this rank got (binding kNone when nothing was bound).
  const Placement& mine() const { return mine_; }
  // The host's table as decided (before each rank's launcher affinity).
  const std::vector<Placement>& host() const { return host_; }
  // Null when there is no topology (no hwloc, or it could not be read).
  const MachineTopology* machine() const { return topology_ ? &topology_->machine() : nullptr; }

  // Binds the calling thread (the coordinator) to the coordinator CPU, if any.
  void BindCoordinatorThread() const;
  // Places a host buffer braid owns on this rank's NUMA node, if one was chosen.
  void PlaceMemory(void* data, size_t bytes) const;
  // The NUMA nodes holding the touched pages of a buffer (empty when unknown).
  std::vector<int> MemoryNodes(const void* data, size_t bytes) const;

 private:
  Status Apply();

  std::unique_ptr<Topology> topology_;
  std::vector<Placement> host_;
  Placement mine_;
};

}  // namespace braid
