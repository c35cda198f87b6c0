// Rank 0's record of which ranks have submitted which uncached names. When every
// rank has submitted a name (or has joined: see SetJoined), the table turns the
// submissions into one response: the agreed parameters, or an error naming the
// disagreement.
//
// Threading: coordinator thread of rank 0 only.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/request.h"

namespace braid {

class MessageTable {
 public:
  explicit MessageTable(int world_size) : world_size_(world_size), joined_(world_size, false) {}

  struct Entry {
    std::vector<RequestMeta> by_rank;
    std::vector<bool> submitted;
    int count = 0;
    Clock::time_point first_seen;
    Clock::time_point last_warned;
  };

  // Records `meta` from `rank`. Returns true when this completes the name.
  bool Add(int rank, const RequestMeta& meta, Clock::time_point now);

  // The ranks that have joined (one flag per rank). A joined rank counts as
  // present for every name; the names this completes are returned, in table order.
  std::vector<std::string> SetJoined(const std::vector<bool>& joined);
  // True when `rank` has neither submitted the entry's name nor joined.
  bool Missing(const Entry& entry, int rank) const;

  // Builds the response for a complete name and forgets it. Only the ranks that
  // submitted the name are compared; joined ranks add nothing (allgather: zero
  // rows), and a broadcast some joined rank did not submit is an error. For GPU
  // tensors it also names each rank's GPU (Response::devices): the first GPU
  // collective sets up every rank's device data plane on the GPU named there, so
  // a later tensor on another GPU of some rank is an error on every rank.
  Response TakeResponse(const std::string& name);
  // Forgets a name, answering it with an error.
  Response TakeError(const std::string& name, StatusCode code, const std::string& message);

  std::map<std::string, Entry>& entries() { return entries_; }
  bool empty() const { return entries_.empty(); }

 private:
  bool Complete(const Entry& entry) const;
  std::string AssignDevices(const Entry& entry, Response* response);

  int world_size_;
  std::vector<bool> joined_;
  // Each rank's GPU data plane, once the first GPU response has named it.
  std::vector<int64_t> plane_device_;
  std::map<std::string, Entry> entries_;
};

// Checks that the ranks with `present[r]` (every rank when `present` is empty)
// submitted the same collective; returns the mismatch message ("" when they agree).
std::string FindMismatch(const std::vector<RequestMeta>& by_rank,
                         const std::vector<bool>& present = {});

}  // namespace braid
