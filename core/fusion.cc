#include "core/fusion.h"

#include <sys/mman.h>

#include <cstring>
#include <new>

namespace braid {
namespace {

bool Fusable(const Response& r) {
  return !r.is_error() && r.meta.collective == Collective::kAllreduce;
}

bool Compatible(const Response& a, const Response& b) {
  return a.meta.dtype == b.meta.dtype && a.meta.device == b.meta.device && a.meta.op == b.meta.op &&
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

PrefaultedBuffer::PrefaultedBuffer(int64_t bytes) : bytes_(bytes) {
  if (bytes <= 0) return;
  void* p = mmap(nullptr, static_cast<size_t>(bytes), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  // Transparent huge pages cut TLB misses when streaming through the buffer.
  madvise(p, static_cast<size_t>(bytes), MADV_HUGEPAGE);
  data_ = static_cast<char*>(p);
  std::memset(data_, 0, static_cast<size_t>(bytes));
}

PrefaultedBuffer::~PrefaultedBuffer() {
  if (data_) munmap(data_, static_cast<size_t>(bytes_));
}

}  // namespace braid
