#include "core/fusion.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>

namespace braid {
namespace {

bool Fusable(const Response& r) {
  return !r.is_error() && (r.meta.collective == Collective::kAllreduce ||
                           r.meta.collective == Collective::kSparseAllreduce ||
                           r.meta.collective == Collective::kNeighborAllreduce);
}

bool Compatible(const Response& a, const Response& b) {
  return a.meta.collective == b.meta.collective && a.meta.index_dtype == b.meta.index_dtype &&
         a.meta.dense_fallback == b.meta.dense_fallback && a.meta.dtype == b.meta.dtype &&
         a.meta.device == b.meta.device && a.meta.op == b.meta.op &&
         a.meta.prescale == b.meta.prescale && a.meta.postscale == b.meta.postscale;
}

}  // namespace

std::vector<FusionGroup> PlanFusion(const std::vector<Response>& responses,
                                    int64_t threshold_bytes) {
  std::vector<FusionGroup> groups;
  for (size_t i = 0; i < responses.size(); ++i) {
    const Response& r = responses[i];
    if (!groups.empty()) {
      FusionGroup& last = groups.back();
      const Response& head = responses[last.first];
      if (Fusable(r) && Fusable(head) && Compatible(head, r) &&
          last.bytes + r.NumBytes() <= threshold_bytes) {
        ++last.count;
        last.bytes += r.NumBytes();
        continue;
      }
    }
    groups.push_back(FusionGroup{i, 1, r.NumBytes()});
  }
  return groups;
}

PrefaultedBuffer::PrefaultedBuffer(int64_t capacity) : capacity_(capacity) {
  if (capacity <= 0) return;
  // Address space only: MAP_NORESERVE commits no memory until a page is touched.
  void* p = mmap(nullptr, static_cast<size_t>(capacity), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return;
  // Transparent huge pages cut TLB misses when streaming through the buffer.
  madvise(p, static_cast<size_t>(capacity), MADV_HUGEPAGE);
  data_ = static_cast<char*>(p);
}

PrefaultedBuffer::~PrefaultedBuffer() {
  if (data_) munmap(data_, static_cast<size_t>(capacity_));
}

char* PrefaultedBuffer::Prefault(int64_t bytes) {
  bytes = std::min(bytes, capacity_);
  if (data_ != nullptr && bytes > faulted_) {
    std::memset(data_ + faulted_, 0, static_cast<size_t>(bytes - faulted_));
    faulted_ = bytes;
  }
  return data_;
}

}  // namespace braid
