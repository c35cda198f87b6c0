// A POSIX shared-memory segment mapped by every rank on a host, and its layout.
//
// Lifetime: local rank 0 creates it under a name no other job uses
// ("/braid-<pid>-<random>"), reserving its memory at once (posix_fallocate, so a
// full /dev/shm is an error here rather than a SIGBUS later); the others open it
// by that name; every rank maps it and faults every page in; once all have
// mapped it, it is unlinked, so the name disappears from /dev/shm while the
// memory lives on until the last rank unmaps it (or dies: a SIGKILL leaves
// nothing behind). The destructor unmaps.
//
// Layout: one RankControl per rank (shm_sync.h), then the data area: two halves
// (a step writes one while the previous step's readers may still be reading the
// other), each with one slot of `slot_bytes` per rank.
//
// Threading: the object is created and destroyed on one thread; the memory is
// shared, and who may touch which part when is the backend's protocol.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "collectives/shm/shm_sync.h"
#include "common/status.h"

namespace braid {
namespace shm {

struct SegmentLayout {
  int ranks = 1;
  int64_t slot_bytes = 0;

  int64_t ControlBytes() const;
  int64_t HalfBytes() const { return ranks * slot_bytes; }
  int64_t TotalBytes() const { return ControlBytes() + 2 * HalfBytes(); }
};

class ShmSegment {
 public:
  // "/braid-<pid>-<random hex>": unique to this job.
  static std::string UniqueName();
  // Creates `name` (which must not exist), reserves and maps `layout`'s bytes.
  static Status Create(const std::string& name, const SegmentLayout& layout,
                       std::unique_ptr<ShmSegment>* out);
  // Opens and maps a segment another rank created with the same layout.
  static Status Open(const std::string& name, const SegmentLayout& layout,
                     std::unique_ptr<ShmSegment>* out);
  ~ShmSegment();

  ShmSegment(const ShmSegment&) = delete;
  ShmSegment& operator=(const ShmSegment&) = delete;

  // Removes the name (the mapping stays). Called once, by the creator.
  Status Unlink();

  const std::string& name() const { return name_; }
  const SegmentLayout& layout() const { return layout_; }
  RankControl* controls() const { return reinterpret_cast<RankControl*>(base_); }
  // Rank `rank`'s slot in half `half` (0 or 1).
  char* Slot(int half, int rank) const {
    return HalfBase(half) + static_cast<int64_t>(rank) * layout_.slot_bytes;
  }
  char* HalfBase(int half) const {
    return base_ + layout_.ControlBytes() + static_cast<int64_t>(half) * layout_.HalfBytes();
  }

 private:
  ShmSegment(const std::string& name, const SegmentLayout& layout) : name_(name), layout_(layout) {}
  Status Map(int fd, bool created);

  std::string name_;
  SegmentLayout layout_;
  char* base_ = nullptr;
  bool linked_ = false;
};

}  // namespace shm
}  // namespace braid
