// How the executor turns an agreed allreduce into backend calls, shared by the host
// and device paths: the backend reduces with sum, min, max or product; average is a
// sum followed by a division (folded into the postscale factor for floating types,
// an integer division toward zero otherwise).
#pragma once

#include <cstdint>

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
