// Fusion: consecutive responses that can share one collective (allreduce with the
// same data type, device, reduce operation and scale factors; sparse allreduce
// with the same value and index types, device, operation and dense_fallback
// setting) are grouped, up to the fusion threshold in bytes (for sparse tensors,
// the pairs the first submitter had at negotiation). Every rank plans from the same ordered
// responses, so every rank forms the same groups.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/request.h"

namespace braid {

struct FusionGroup {
  size_t first = 0;  // index into the response list
  size_t count = 0;  // consecutive responses in the group
  int64_t bytes = 0;
};

std::vector<FusionGroup> PlanFusion(const std::vector<Response>& responses,
                                    int64_t threshold_bytes);

// The host fusion buffer: address space for `capacity` bytes reserved once, its
// pages faulted in when a group first needs them and kept, so no later
// collective pays for first-touch page faults and a large threshold costs no
// memory until fusion uses it.
//
// Threading: one thread at a time (the coordinator).
class PrefaultedBuffer {
 public:
  explicit PrefaultedBuffer(int64_t capacity);
  ~PrefaultedBuffer();
  PrefaultedBuffer(const PrefaultedBuffer&) = delete;
  PrefaultedBuffer& operator=(const PrefaultedBuffer&) = delete;

  // Whether the address space could be reserved (always true for capacity 0).
  bool ok() const { return capacity_ <= 0 || data_ != nullptr; }
  int64_t capacity() const { return capacity_; }
  // The buffer with at least its first `bytes` (at most capacity()) faulted in.
  char* Prefault(int64_t bytes);
  int64_t faulted() const { return faulted_; }
  // The reserved range (null when none), for placing it on a NUMA node.
  char* reserved() const { return data_; }

 private:
  char* data_ = nullptr;
  int64_t capacity_ = 0;
  int64_t faulted_ = 0;
};

}  // namespace braid
