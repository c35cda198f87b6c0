// The host-staged device data plane: GPU buffers travel through pinned host memory
// and the host backend: the transport's, MPI or the shared-memory backend that
// BRAID_HOST_BACKEND chose (collectives/shm/), which this file only sees as a
// Backend. It serves GPU tensors when NCCL is not built, when BRAID_GPU_BACKEND=mpi,
// and when several ranks share one GPU (NCCL refuses two ranks of one communicator
// on one device).
//
// Allreduce is pipelined segment by segment (the staging pipeline, in
// staged_pipeline.h): every segment's device-to-host copy is queued at once on a
// copy stream; as each lands, the host backend reduces it while the next ones are
// still copying, and its host-to-device copy is queued on a second stream while the
// host reduces the next segment. A fused group is first packed on the device with
// the batched copy kernel (one launch), reduced as one buffer and unpacked the same
// way. Allgatherv and broadcast copy the block once each way around the host
// collective. NeighborExchange copies every distinct send buffer to the host (a
// buffer sent to several peers once) and every receive back, around the host
// backend's exchange; the pinned buffer then holds all of them back to back, so
// Prepare should be given the receives' bytes plus the distinct sends' bytes.
//
// Ordering: the copies are ordered after the work queued on each buffer's `stream`
// (null: the legacy default stream) with an event, so the host never waits for the
// framework's kernels to be scheduled; the host waits (blocking, no spinning) only
// for the device-to-host copies it must reduce, and for the last host-to-device
// copy before returning. Outputs are therefore ready for any stream on return, as
// with the NCCL backend.
//
// Errors: a bad buffer (wrong device, negative count) is kInvalidArgument before
// anything runs. A CUDA failure once a collective has started still lets this rank
// take part in the remaining host collectives, so that the ranks stay in step; the
// call then returns the CUDA error (this rank's result is wrong, the others' are
// computed from what this rank sent).
//
// Threading: driven by one thread at a time (Backend's contract). The host backend
// is borrowed and shared with host-memory collectives, which the same thread
// drives.
#pragma once

#include <cstdint>
#include <memory>

#include "collectives/backend.h"
#include "collectives/transport.h"
#include "common/status.h"

namespace braid {
namespace staged {

struct StagedOptions {
  // Bytes per pipeline segment of an allreduce: large enough that the host
  // collective runs at full speed on it, small enough that copies and reduction
  // overlap.
  int64_t segment_bytes = int64_t{4} << 20;
};

// A backend for `device`'s buffers over `host` (which must outlive it). Every rank
// of `world` must create one at the same point of its collective sequence only
// if the host backend requires it; creation itself communicates nothing.
Status CreateStagedBackend(Backend* host, const WorldInfo& world, int device,
                           const StagedOptions& options, std::unique_ptr<Backend>* out);

inline Status CreateStagedBackend(Backend* host, const WorldInfo& world, int device,
                                  std::unique_ptr<Backend>* out) {
  return CreateStagedBackend(host, world, device, StagedOptions(), out);
}

}  // namespace staged
}  // namespace braid
