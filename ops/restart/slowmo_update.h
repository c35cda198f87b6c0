// The SlowMo outer update (Wang, Tantia, Ballas, Rabbat, ICLR 2020, Algorithm 1) as
// one fused pass over the parameters, the allreduced sum and the slow buffers. x_old
// is x_{t,0}, where the block that just ended started on every rank. At a restart,
// with base learning rate gamma (lr), slow learning rate alpha and slow momentum
// beta, element by element:
//
//   xbar  = sum / N                            (the exact average over the ranks)
//   d     = (x_old - xbar) / lr                (the block's slow gradient)
//   s     = beta * s + d                       (slow momentum)
//   x_old = x_old - alpha * lr * s             (heavy ball, Algorithm 1)
//   x_old = x_old - alpha * lr * (beta * s + d)  (nesterov)
//   x     = x_old                              (every rank starts the next block here)
//
// The nesterov step is BMUF's Nesterov block momentum (Chen and Huo, 2016): with
// W the block-momentum iterate and Delta = -alpha * lr * s, x_old is the look-ahead
// point W + eta * Delta, and d measures the block from it, so the look-ahead is
// counted once (slowmo.h spells out the mapping).
//
// One read of sum, x_old and s and one write of x, x_old and s per element: the
// pass is bound by memory bandwidth. The host loop is written for the compiler to
// vectorise; ops/restart/slowmo_update.cu is the same pass on a GPU.
#pragma once

#include <cstdint>

#include "common/status.h"
#include "common/types.h"

namespace braid::restart {

struct SlowMoCoefficients {
  double inv_ranks = 1.0;  // 1 / N
  double inv_lr = 1.0;     // 1 / gamma
  double beta = 0.0;       // slow momentum (BMUF: block momentum eta)
  double alpha_lr = 1.0;   // alpha * gamma (BMUF: block learning rate zeta times gamma)
  bool nesterov = false;
};

// One registered parameter buffer against its slices of the packed sum and of the
// slow buffers; all `count` elements of `dtype`, in the same memory (host or one GPU).
struct SlowMoSegment {
  void* x = nullptr;
  const void* sum = nullptr;
  void* x_old = nullptr;
  void* s = nullptr;
  int64_t count = 0;
  DataType dtype = DataType::kFloat32;
};

// The pass on host memory (float32 or float64).
Status SlowMoUpdateHost(const SlowMoSegment& segment, const SlowMoCoefficients& c);

}  // namespace braid::restart
