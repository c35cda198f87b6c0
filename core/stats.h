// Communication counters: how many collectives this process (one rank) has run and
// how many payload bytes it contributed to them, per collective kind. They measure
// what an algorithm sends (a restart every I steps against an allreduce every step)
// instead of leaving it to be claimed.
//
// A collective is one executed group: a fused allreduce of many tensors counts once,
// with the bytes of all of them. Bytes are this rank's payload (allreduce: the
// tensors reduced; allgather: this rank's input; broadcast: the buffer, on every
// rank; sparse: this rank's values and, apart, its indices; a sparse allreduce run
// as a dense one counts the dense tensor as values), not the wire traffic of the algorithm the
// backend chooses (a ring allreduce sends about 2 (N-1)/N times the payload). The control plane's
// negotiation rounds are not counted. Neighbour collectives count this rank's
// tensors once as payload, and apart, per peer, the bytes actually sent to it. Joined ranks count
// the collectives they stand in for.
//
// The counters are per process, not per engine: the C API and the Python extension
// each hold a default engine, and both report the same process-wide numbers.
//
// Threading: every function is thread-safe (relaxed atomics: a snapshot taken while
// collectives run may mix counts from before and after one of them).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "common/types.h"

namespace braid {

struct CollectiveCounts {
  int64_t count = 0;
  int64_t bytes = 0;
  // Sparse collectives: `bytes` counts this rank's values, `index_bytes` its indices.
  int64_t index_bytes = 0;
};

// Adds one executed collective of `bytes` payload bytes (this rank's) and, for a
// sparse one, `index_bytes` bytes of indices.
void RecordCollective(Collective collective, int64_t bytes, int64_t index_bytes = 0);

// The counts for `collective` since start-up or the last ResetStats().
CollectiveCounts ReadStats(Collective collective);

// Adds the bytes a neighbour collective sent to each peer: (peer rank, bytes).
void RecordNeighborSends(const std::vector<std::pair<int, int64_t>>& sends);

// Bytes sent to each peer rank by the neighbour collectives (index: the peer;
// shorter than the world when the highest peers were never sent to).
std::vector<int64_t> ReadNeighborSends();

void ResetStats();

}  // namespace braid
