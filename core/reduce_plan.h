// How the executor turns an agreed allreduce or allgather into backend calls,
// shared by the host and device paths. For allreduce: the backend reduces with sum,
// min, max or product; average is a sum and a division by the rank count n:
//   float32 / float64: 1/n folded into the postscale factor (postscale / n, as
//     Horovod does), so that an average with scale factors is Horovod's bit for bit;
//   float16 / bfloat16 in host memory: the backend averages (kAverage: a float32
//     sum times float32(1/n), rounded once, collectives/mpi), because a 16-bit sum
//     rounded before the division loses bits and overflows where the average does
//     not (n ranks averaging 60000 would sum past float16's 65504 to infinity);
//     the scale factors apply around it as for any sum. On a device 1/n goes into
//     the postscale: NCCL's ncclAvg premultiplies by 1/n, which cannot overflow;
//   integers: an exact integer division toward zero after the postscale
//     (cpu::DivideBy says why not Horovod's multiplication by 1.0 / n).
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
  if (meta.op != ReduceOp::kAverage) return plan;
  if (IsSixteenBitFloat(meta.dtype) && meta.device == kCpuDevice) return plan;  // kAverage
  plan.backend_op = ReduceOp::kSum;
  if (IsFloatingPoint(meta.dtype)) {
    plan.postscale /= world_size;
  } else {
    plan.integer_divisor = world_size;
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
