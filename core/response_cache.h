// The response cache: once the ranks have agreed on a name, its response is kept in
// a numbered slot on every rank. Later requests with the same parameters are then
// agreed on by one bitwise AND of slot bits instead of a round trip through rank 0.
//
// Every rank performs the same Put/Touch/Erase calls in the same order (they follow
// the agreed responses), so slot numbers and evictions are identical everywhere.
// Find() is local and does not change the order.
//
// Threading: coordinator thread only.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/request.h"

namespace braid {

class ResponseCache {
 public:
  explicit ResponseCache(uint32_t capacity);

  enum class Match { kMiss, kHit, kStale };
  // kHit: `meta` (submitted on `rank`) is what the cached response in *slot agreed
  // on. kStale: the name is cached with other parameters.
  Match Find(const RequestMeta& meta, int rank, uint32_t* slot) const;

  // Stores `response` under its name, replacing an entry of the same name or, when
  // full, evicting the least recently used one. Returns the slot used; *evicted is
  // set to true when another name's entry was dropped to make room.
  uint32_t Put(const Response& response, bool* evicted);
  const Response& Get(uint32_t slot) const { return slots_[slot].response; }
  void Touch(uint32_t slot);
  void Erase(uint32_t slot);

  uint32_t capacity() const { return capacity_; }
  size_t size() const { return by_name_.size(); }

 private:
  struct Slot {
    Response response;
    uint64_t last_used = 0;
    bool used = false;
  };
  uint32_t TakeFreeSlot(bool* evicted);

  uint32_t capacity_;
  uint64_t clock_ = 0;
  std::vector<Slot> slots_;
  std::set<uint32_t> free_;
  std::unordered_map<std::string, uint32_t> by_name_;
};

// True when `meta`, submitted on `rank`, is what `response` agreed on.
bool ResponseMatches(const Response& response, const RequestMeta& meta, int rank);

}  // namespace braid
