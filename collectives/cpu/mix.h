// The mixing pass of the neighbour collectives (docs/gossip.md): a rank's new
// value is a weighted sum of its own tensor and the tensors its neighbours sent,
//   out[e] = self_weight * self[e] + sum over k of weights[k] * neighbours[k][e],
// one pass over the memory, in that order of operations (the self term first,
// then the neighbours in the order given), without fused multiply-adds, so that
// the host and the CUDA kernel (DeviceOps::Mix) give the same bits.
//
// Arithmetic: float64 in double; float32 in float with each weight rounded to
// float once; float16 and bfloat16 accumulate in float and round once per element.
// Other dtypes are refused.
//
// Threading: a plain function on the caller's buffers; safe from any thread.
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.h"
#include "common/types.h"

namespace braid {

struct MixArgs {
  void* out = nullptr;          // may equal self (in place); never a neighbour's
  const void* self = nullptr;   // this rank's tensor
  double self_weight = 1.0;
  std::vector<const void*> neighbours;  // received tensors, `count` elements each
  std::vector<double> weights;          // one per neighbour
  int64_t count = 0;
  DataType dtype = DataType::kFloat32;
  void* stream = nullptr;  // device passes only (DeviceOps::Mix)
};

namespace cpu {

// Whether the mixing pass takes `dtype` (float16, bfloat16, float32, float64).
bool IsMixDataType(DataType dtype);

// The pass above on host memory. Refuses a dtype IsMixDataType rejects, and
// weights that do not match the neighbours in number.
Status Mix(const MixArgs& args);

}  // namespace cpu
}  // namespace braid
