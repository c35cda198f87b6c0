// Chooses the host data plane (BRAID_HOST_BACKEND) and sets up the shared-memory
// one when it is chosen: the segment is created by rank 0, opened by the others
// under the name rank 0 broadcasts on the control channel, and unlinked once every
// rank has mapped it (shm_segment.h). Every step that can fail on one rank is
// agreed on (collectives/agreement.h), so every rank makes the same choice.
//
// Threading: called once, at transport creation, on the thread creating it,
// before the control channel carries anything else.
#pragma once

#include <cstdint>
#include <memory>

#include "collectives/backend.h"
#include "collectives/control_channel.h"
#include "collectives/host_backend.h"
#include "collectives/transport.h"
#include "common/status.h"

namespace braid {
namespace shm {

// Collective over `control`'s ranks (those of `world`). On success *out is the
// shared-memory backend, or null when the host should use MPI: kMpi; kAuto with
// one rank, with ranks on several hosts, or when the segment cannot be set up on
// some rank (with a warning). kShm with ranks on several hosts, or a segment that
// cannot be set up, is an error on every rank. `point_to_point` (borrowed)
// carries the shared-memory backend's NeighborExchange.
Status SetUpHostBackend(const TransportOptions& options, const WorldInfo& world,
                        ControlChannel* control, Backend* point_to_point,
                        std::unique_ptr<Backend>* out);

}  // namespace shm
}  // namespace braid
