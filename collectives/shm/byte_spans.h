// A group of host buffers read and written as if they were one: the
// concatenation a fused allreduce reduces, without packing it anywhere.
//
// Threading: a plain value; used by one thread at a time.
#pragma once

#include <algorithm>
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

  // Calls fn(data, done, n) for each contiguous part of the concatenation's
  // bytes [offset, offset + bytes), in order: `data` points at its `n` bytes,
  // which are bytes [done, done + n) of the range.
  template <typename Fn>
  void ForEach(int64_t offset, int64_t bytes, Fn&& fn) const {
    int64_t done = 0;
    for (size_t i = bytes > 0 ? Find(offset) : 0; done < bytes; ++i) {
      const int64_t at = offset + done;
      const int64_t n = std::min(bytes - done, starts_[i + 1] - at);
      fn(data_[i] + (at - starts_[i]), done, n);
      done += n;
    }
  }

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
