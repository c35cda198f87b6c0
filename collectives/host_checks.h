// What every host backend (collectives/mpi, collectives/shm) checks of its
// arguments before it communicates, with the same messages: a buffer in host
// memory of a valid dtype, a broadcast root that is a rank, and allgatherv counts
// that match the buffers.
//
// Threading: plain functions; safe from any thread.
#pragma once

#include <cstdint>
#include <vector>

#include "common/buffer.h"
#include "common/status.h"

namespace braid {

// `what` names the argument ("allreduce", "allgatherv send"); `backend` the
// backend ("the MPI backend").
Status CheckHostBuffer(const BufferView& buf, const char* what, const char* backend);

Status CheckBroadcastRoot(int root, int size);

// The counts of an allgatherv among `size` ranks, of which this is `rank`, against
// its send and receive buffers (already checked as buffers).
Status CheckAllgathervCounts(const BufferView& send, const BufferView& recv,
                             const std::vector<int64_t>& counts, int rank, int size);

// Both buffers (CheckHostBuffer), then the counts (CheckAllgathervCounts).
Status CheckHostAllgatherv(const BufferView& send, const BufferView& recv,
                           const std::vector<int64_t>& counts, int rank, int size,
                           const char* backend);

}  // namespace braid
