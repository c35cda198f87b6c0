// A group of host buffers read and written as if they were one: the
// concatenation a fused allreduce reduces, without packing it anywhere.
//
// Threading: a plain value; used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace braid {
namespace shm {

class ByteSpans {
 public:
  void Clear();
  // Appends `bytes` bytes at `data` (empty spans are skipped).
  void Add(char* data, int64_t bytes);
  int64_t total_bytes() const { return starts_.empty() ? 0 : starts_.back(); }

  // Copies the concatenation's bytes [offset, offset + bytes) to `dst`.
  void Gather(int64_t offset, int64_t bytes, char* dst) const;
  // Copies `src` over the concatenation's bytes [offset, offset + bytes).
  void Scatter(int64_t offset, int64_t bytes, const char* src) const;

 private:
  // Index of the span holding byte `offset` of the concatenation.
  size_t Find(int64_t offset) const;

  std::vector<char*> data_;
  // starts_[i] is span i's first byte in the concatenation; the last entry is
  // the total (so starts_ has one more entry than data_).
  std::vector<int64_t> starts_;
};

}  // namespace shm
}  // namespace braid
