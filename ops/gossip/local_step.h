// The local part of one step of decentralized momentum SGD (Yu, Jin, Yang, ICML
// 2019, Algorithm 2) as one fused pass over the parameters x, the gradient g and
// the momentum u of one rank, element by element, before the mixing step:
//
//   g~ = g + weight_decay * x                    (weight decay folded into g)
//   u~ = beta * u + g~                           (local momentum step)
//   x~ = x - lr * u~                             (Option I, heavy ball)
//   x~ = x - lr * (beta * u~ + g~)               (Option II, Nesterov)
//
// x and u are overwritten by x~ and u~; g is only read. Without momentum buffers
// (beta = 0, D-PSGD) u~ = g~ is not stored. The mixing step that follows (x = sum
// over j of W_ij x~_j, and the same for u) is decentralized.h's.
//
// Arithmetic in T (as the buffers are stored), in the order written above and
// without fused multiply-adds (the host file is compiled with -ffp-contract=off,
// the CUDA kernel uses the round-to-nearest intrinsics), so that the host and the
// GPU give the same bits. One read of x, g, u and one write of x, u per element:
// bound by memory bandwidth.
//
// The squared distance pass serves the consensus distance: sum over the elements
// of (x - sum * inv_ranks)^2, accumulated in double.
#pragma once

#include <cstdint>

#include "common/status.h"
#include "common/types.h"

namespace braid::gossip {

struct LocalStepCoefficients {
  double lr = 0.0;
  double beta = 0.0;          // momentum
  double weight_decay = 0.0;  // folded into the gradient
  bool nesterov = false;      // Option II
};

// One registered parameter buffer with its gradient and momentum, all `count`
// elements of `dtype` in the same memory (host or one GPU). u may be null when
// beta = 0 (no momentum buffer).
struct LocalStepSegment {
  void* x = nullptr;
  const void* g = nullptr;
  void* u = nullptr;
  int64_t count = 0;
  DataType dtype = DataType::kFloat32;
};

// The pass on host memory (float32 or float64).
Status LocalStepHost(const LocalStepSegment& segment, const LocalStepCoefficients& c);

// sum over i < count of (x[i] - sum[i] * inv_ranks)^2 in double, on host memory.
Status SquaredDistanceHost(const void* x, const void* sum, int64_t count, DataType dtype,
                           double inv_ranks, double* out);

}  // namespace braid::gossip
