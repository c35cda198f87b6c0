// SlowMo (Wang, Tantia, Ballas, Rabbat, ICLR 2020) and BMUF (Chen and Huo, ICASSP
// 2016) on flat buffers. Every `period` (tau) local steps of any base optimizer
// with learning rate lr, one restart:
//
//   xbar  = avg(x)
//   d     = (x_old - xbar) / lr            (measured from where the block started)
//   s     = slow_momentum * s + d
//   x_old = x_old - slow_lr * lr * s       (nesterov: s replaced by slow_momentum * s + d)
//   x     = x_old on every rank
//
// x_old (where the current block started: x_{t,0}) and s (the slow momentum) are
// flat buffers the caller owns, laid out as the registered parameters concatenated
// in order; the caller starts s at zero and x_old at the parameters
// (InitSlowParams). With slow_momentum = 0 and slow_lr = 1 a restart is local
// SGD's average. BMUF is the same update with block momentum eta = slow_momentum
// and block learning rate zeta = slow_lr, Delta = -slow_lr * lr * s (constant lr):
// classic block momentum G = xbar - W, Delta = eta * Delta + zeta * G,
// W = W + Delta, with x_old = W; Nesterov block momentum (BMUF-NBM) starts each
// block from the look-ahead point W + eta * Delta and measures G from that start,
// with x_old = W + eta * Delta (the nesterov line above).
//
// The average and the outer step are one allreduce (as PeriodicAverager's restart,
// with the buffers registered as `averaged` carried along and averaged) followed by
// one fused pass (slowmo_update.h).
//
// Threading: one thread at a time per op.
#pragma once

#include <memory>

#include "ops/restart/periodic_averager.h"

namespace braid::restart {

struct SlowMoOptions {
  std::string name;
  Schedule schedule;           // period: tau
  double slow_lr = 1.0;        // alpha (BMUF: zeta)
  double slow_momentum = 0.5;  // beta (BMUF: eta)
  bool nesterov = false;       // start each period from the look-ahead point
};

class SlowMo : public PeriodicAverager {
 public:
  static Status Create(EnqueueFn enqueue, const SlowMoOptions& options,
                       std::unique_ptr<SlowMo>* out);

  // Registers x_old and s: flat, as many elements as the registered parameters,
  // their dtype and device. They must stay valid until replaced.
  Status SetSlowBuffers(const BufferView& slow_params, const BufferView& slow_momentum);
  // x_old = the registered parameters, concatenated: the start of the first period.
  Status InitSlowParams();

  const SlowMoOptions& options() const { return options_; }

 protected:
  Status Validate(double lr) const override;
  Status Finish(int64_t ranks, double lr) override;

 private:
  SlowMo(EnqueueFn enqueue, const SlowMoOptions& options);
  Status CheckSlowBuffers() const;

  SlowMoOptions options_;
  BufferView x_old_;
  BufferView s_;
  bool have_slow_ = false;
};

}  // namespace braid::restart
