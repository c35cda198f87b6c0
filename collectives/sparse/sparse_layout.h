// Where each rank's (index, value) pairs sit in a sparse exchange. A fused group of
// T sparse tensors travels as one message per rank: the indices of tensor 0, 1,
// ..., T-1 back to back, padded to 8 bytes, then their values (rows) likewise, so
// that every block is aligned for its type. The messages of all ranks are
// gathered in rank order into one buffer.
//
// Threading: a plain value; safe to share read-only.
#pragma once

#include <cstdint>
#include <vector>

#include "common/types.h"

namespace braid {

struct SparseLayout {
  int ranks = 0;
  int tensors = 0;
  int64_t index_size = 0;               // bytes per index
  int64_t value_size = 0;               // bytes per value element
  std::vector<int64_t> row;             // value elements per pair, per tensor
  std::vector<int64_t> pairs;           // pairs[r * tensors + t]: rank r's pairs of tensor t
  std::vector<int64_t> message_bytes;   // per rank
  std::vector<int64_t> message_offset;  // per rank, in the gathered buffer
  std::vector<int64_t> index_offset;    // [r * tensors + t], bytes, in the gathered buffer
  std::vector<int64_t> value_offset;    // likewise

  int64_t Pairs(int r, int t) const { return pairs[static_cast<size_t>(r) * tensors + t]; }
  int64_t IndexOffset(int r, int t) const {
    return index_offset[static_cast<size_t>(r) * tensors + t];
  }
  int64_t ValueOffset(int r, int t) const {
    return value_offset[static_cast<size_t>(r) * tensors + t];
  }
  int64_t gathered_bytes() const {
    return ranks == 0 ? 0 : message_offset.back() + message_bytes.back();
  }
  // Every rank's pairs of tensor t, added up.
  int64_t TotalPairs(int t) const;
};

// The layout for `ranks` ranks whose pair counts are `pairs` (rank-major, as
// AgreeOnCounts returns them) of tensors with `row` value elements per pair.
SparseLayout PlanSparseLayout(int ranks, const std::vector<int64_t>& row,
                              const std::vector<int64_t>& pairs, DataType index_dtype,
                              DataType value_dtype);

}  // namespace braid
