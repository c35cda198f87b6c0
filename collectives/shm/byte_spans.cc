#include "collectives/shm/byte_spans.h"

#include <cstring>

namespace braid {
namespace shm {

void ByteSpans::Clear() {
  data_.clear();
  starts_.clear();
}

void ByteSpans::Add(char* data, int64_t bytes) {
  if (starts_.empty()) starts_.push_back(0);
  if (bytes <= 0) return;
  data_.push_back(data);
  starts_.push_back(starts_.back() + bytes);
}

size_t ByteSpans::Find(int64_t offset) const {
  // The last start not after `offset`.
  auto it = std::upper_bound(starts_.begin(), starts_.end(), offset);
  return static_cast<size_t>(it - starts_.begin()) - 1;
}

void ByteSpans::Gather(int64_t offset, int64_t bytes, char* dst) const {
  ForEach(offset, bytes, [dst](const char* data, int64_t done, int64_t n) {
    std::memcpy(dst + done, data, static_cast<size_t>(n));
  });
}

void ByteSpans::Scatter(int64_t offset, int64_t bytes, const char* src) const {
  ForEach(offset, bytes, [src](char* data, int64_t done, int64_t n) {
    std::memcpy(data, src + done, static_cast<size_t>(n));
  });
}

}  // namespace shm
}  // namespace braid
