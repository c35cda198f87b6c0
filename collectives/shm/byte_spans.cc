#include "collectives/shm/byte_spans.h"

#include <algorithm>
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
  if (bytes <= 0) return;
  for (size_t i = Find(offset); bytes > 0; ++i) {
    const int64_t skip = offset - starts_[i];
    const int64_t n = std::min(bytes, starts_[i + 1] - offset);
    std::memcpy(dst, data_[i] + skip, static_cast<size_t>(n));
    dst += n;
    offset += n;
    bytes -= n;
  }
}

void ByteSpans::Scatter(int64_t offset, int64_t bytes, const char* src) const {
  if (bytes <= 0) return;
  for (size_t i = Find(offset); bytes > 0; ++i) {
    const int64_t skip = offset - starts_[i];
    const int64_t n = std::min(bytes, starts_[i + 1] - offset);
    std::memcpy(data_[i] + skip, src, static_cast<size_t>(n));
    src += n;
    offset += n;
    bytes -= n;
  }
}

}  // namespace shm
}  // namespace braid
