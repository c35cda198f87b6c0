#include "collectives/shm/shm_setup.h"

#include <string>

#include "collectives/agreement.h"
#include "collectives/shm/shm_backend.h"
#include "collectives/shm/shm_segment.h"
#include "common/logging.h"

namespace braid {
namespace shm {
namespace {

// Whether shared memory is wanted at all; an error for kShm across hosts. Every
// rank computes the same: local_size == size holds on all ranks or on none.
Status WantShm(HostBackend kind, const WorldInfo& world, bool* want) {
  const bool one_host = world.local_size == world.size;
  *want = kind == HostBackend::kShm || (kind == HostBackend::kAuto && one_host && world.size > 1);
  if (kind == HostBackend::kShm && !one_host) {
    return InvalidArgument("BRAID_HOST_BACKEND=shm needs every rank on one host, but the " +
                           std::to_string(world.size) + " ranks span " +
                           std::to_string(world.cross_size) +
                           " hosts; use BRAID_HOST_BACKEND=mpi or auto");
  }
  return Status::OK();
}

// Creates (rank 0) or opens (the others) the segment; the outcome is agreed.
// Rank 0 unlinks the name once every rank has mapped it, or has failed to.
Status MapSegment(const SegmentLayout& layout, const WorldInfo& world, ControlChannel* control,
                  std::unique_ptr<ShmSegment>* segment) {
  std::string name;
  Status local;
  if (world.rank == 0) {
    name = ShmSegment::UniqueName();
    local = ShmSegment::Create(name, layout, segment);
  }
  Status agreed = AgreeOnStatus(control, local);
  if (agreed.ok()) agreed = control->BroadcastFromRoot(&name);
  if (agreed.ok() && world.rank != 0) local = ShmSegment::Open(name, layout, segment);
  if (agreed.ok()) agreed = AgreeOnStatus(control, local);
  // Every rank has mapped it (or given up): the name is no longer needed, and
  // without it nothing is left in /dev/shm whatever happens to the job later.
  if (world.rank == 0 && *segment) {
    const Status unlinked = (*segment)->Unlink();
    if (!unlinked.ok()) {
      BRAID_LOG(Warning) << unlinked.message();
    }
  }
  if (!agreed.ok()) segment->reset();
  return agreed;
}

}  // namespace

Status SetUpHostBackend(const TransportOptions& options, const WorldInfo& world,
                        ControlChannel* control, Backend* point_to_point,
                        std::unique_ptr<Backend>* out) {
  out->reset();
  bool want = false;
  BRAID_RETURN_IF_ERROR(AgreeOnStatus(control, WantShm(options.host_backend, world, &want)));
  if (!want) {
    BRAID_LOG(Debug) << "host backend: mpi (BRAID_HOST_BACKEND="
                     << HostBackendName(options.host_backend) << ")";
    return Status::OK();
  }
  SegmentLayout layout;
  layout.ranks = world.size;
  layout.slot_bytes =
      ChooseSlotBytes(world.size, options.fusion_threshold_bytes, options.shm_slot_bytes);
  std::unique_ptr<ShmSegment> segment;
  const Status mapped = MapSegment(layout, world, control, &segment);
  if (!mapped.ok()) {
    if (options.host_backend == HostBackend::kShm) {
      return Status(
          mapped.code(),
          "BRAID_HOST_BACKEND=shm: cannot set up the shared-memory segment: " + mapped.message());
    }
    if (world.rank == 0) {
      BRAID_LOG(Warning) << "cannot set up the shared-memory segment (" << mapped.message()
                         << "); host collectives use MPI";
    }
    return Status::OK();
  }
  BRAID_LOG(Debug) << "host backend: shm (" << world.size << " ranks, " << layout.TotalBytes()
                   << " bytes, " << layout.slot_bytes << " byte slots, segment " << segment->name()
                   << ", unlinked)";
  out->reset(new ShmBackend(std::move(segment), world.rank, world.size, point_to_point));
  return Status::OK();
}

}  // namespace shm
}  // namespace braid
