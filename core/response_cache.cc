#include "core/response_cache.h"

namespace braid {

bool ResponseMatches(const Response& response, const RequestMeta& meta, int rank) {
  RequestMeta agreed = response.meta, mine = meta;
  // GPU tensors: each rank's own GPU was agreed on (ranks may use different ones).
  if (!response.devices.empty()) {
    if (rank >= static_cast<int>(response.devices.size()) || response.devices[rank] != meta.device)
      return false;
    agreed.device = mine.device;
  }
  // Sparse: each rank's number of pairs travels with the data, not in the response.
  if (IsSparse(meta.collective)) agreed.pairs = mine.pairs = 0;
  // Neighbour collectives: each rank's own lists, as the ranks agreed on them.
  if (IsNeighbor(meta.collective)) {
    if (!GraphOf(response, rank, &agreed.send_to, &agreed.recv_from)) return false;
  }
  if (meta.collective != Collective::kAllgather) return agreed == mine;
  // Allgather: the first dimension may differ between ranks.
  if (mine.shape.empty() || agreed.shape.empty() ||
      rank >= static_cast<int>(response.first_dims.size()))
    return false;
  if (response.first_dims[rank] != mine.shape[0]) return false;
  agreed.shape[0] = mine.shape[0] = 0;
  return agreed == mine;
}

ResponseCache::ResponseCache(uint32_t capacity) : capacity_(capacity), slots_(capacity) {
  for (uint32_t i = 0; i < capacity; ++i) free_.insert(i);
}

ResponseCache::Match ResponseCache::Find(const RequestMeta& meta, int rank, uint32_t* slot) const {
  auto it = by_name_.find(meta.name);
  if (it == by_name_.end()) return Match::kMiss;
  *slot = it->second;
  return ResponseMatches(slots_[it->second].response, meta, rank) ? Match::kHit : Match::kStale;
}

uint32_t ResponseCache::TakeFreeSlot(bool* evicted) {
  *evicted = false;
  if (!free_.empty()) {
    uint32_t slot = *free_.begin();
    free_.erase(free_.begin());
    return slot;
  }
  uint32_t victim = 0;
  for (uint32_t i = 1; i < capacity_; ++i) {
    if (slots_[i].last_used < slots_[victim].last_used) victim = i;
  }
  by_name_.erase(slots_[victim].response.meta.name);
  *evicted = true;
  return victim;
}

uint32_t ResponseCache::Put(const Response& response, bool* evicted) {
  *evicted = false;
  uint32_t slot;
  auto it = by_name_.find(response.meta.name);
  if (it != by_name_.end()) {
    slot = it->second;
  } else {
    slot = TakeFreeSlot(evicted);
    by_name_[response.meta.name] = slot;
  }
  slots_[slot].response = response;
  slots_[slot].used = true;
  slots_[slot].last_used = ++clock_;
  return slot;
}

void ResponseCache::Touch(uint32_t slot) {
  slots_[slot].last_used = ++clock_;
}

void ResponseCache::Erase(uint32_t slot) {
  if (!slots_[slot].used) return;
  by_name_.erase(slots_[slot].response.meta.name);
  slots_[slot] = Slot();
  free_.insert(slot);
}

}  // namespace braid
