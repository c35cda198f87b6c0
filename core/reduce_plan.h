// How the executor turns an agreed allreduce or allgather into backend calls,
// shared by the host and device paths. For allreduce: the backend reduces with sum,
// min, max or product; average is a sum followed by a division (folded into the
// postscale factor for floating types, an integer division toward zero otherwise).
// On the host the executor scales; on a device the backend folds the scaling into
// its pack and unpack passes (Backend::AllreduceScaled).
#pragma once

#include <cstdint>
#include <vector>

#include "common/buffer.h"
#include "common/types.h"
#include "core/request.h"

namespace braid {

struct ReducePlan {
  ReduceOp backend_op;
  double prescale;
  double postscale;
  int64_t integer_divisor;  // 1 when nothing to divide
};

inline ReducePlan PlanReduce(const RequestMeta& meta, int world_size) {
  ReducePlan plan{meta.op, meta.prescale, meta.postscale, 1};
  if (meta.op == ReduceOp::kAverage) {
    plan.backend_op = ReduceOp::kSum;
    if (IsFloatingPoint(meta.dtype)) {
      plan.postscale /= world_size;
    } else {
      plan.integer_divisor = world_size;
    }
  }
  return plan;
}

// An allgather's output: each rank's element count (rows times the row size), in
// rank order, and the gathered shape (the first dimensions added up).
struct GatherLayout {
  std::vector<int64_t> counts;
  std::vector<int64_t> shape;
  int64_t elements = 0;
};

inline GatherLayout PlanGather(const Response& agreed, const RequestMeta& mine) {
  int64_t row = 1;
  for (size_t d = 1; d < mine.shape.size(); ++d) row *= mine.shape[d];
  GatherLayout layout;
  layout.shape = mine.shape;
  layout.shape[0] = 0;
  for (int64_t rows : agreed.first_dims) {
    layout.counts.push_back(rows * row);
    layout.shape[0] += rows;
  }
  layout.elements = layout.shape[0] * row;
  return layout;
}

// A view of `data` with the request's element count, dtype, device and stream.
inline BufferView ViewOf(const Request& r, void* data) {
  BufferView v;
  v.data = data;
  v.count = r.meta.NumElements();
  v.dtype = r.meta.dtype;
  v.device = r.meta.device;
  v.stream = r.stream;
  return v;
}

}  // namespace braid
