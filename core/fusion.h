// Fusion: consecutive responses that can share one collective (allreduce with the
// same data type, device, reduce operation and scale factors) are grouped, up to
// the fusion threshold in bytes. Every rank plans from the same ordered responses,
// so every rank forms the same groups.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/request.h"

namespace braid {

struct FusionGroup {
  size_t first = 0;  // index into the response list
  size_t count = 0;  // consecutive responses in the group
  int64_t bytes = 0;
};

std::vector<FusionGroup> PlanFusion(const std::vector<Response>& responses,
                                    int64_t threshold_bytes);

// A host buffer allocated once and touched page by page up front, so that no
// collective pays for first-touch page faults.
class PrefaultedBuffer {
 public:
  explicit PrefaultedBuffer(int64_t bytes);
  ~PrefaultedBuffer();
  PrefaultedBuffer(const PrefaultedBuffer&) = delete;
  PrefaultedBuffer& operator=(const PrefaultedBuffer&) = delete;

  char* data() { return data_; }
  int64_t bytes() const { return bytes_; }

 private:
  char* data_ = nullptr;
  int64_t bytes_ = 0;
};

}  // namespace braid
