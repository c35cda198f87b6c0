// Periodic averaging on flat buffers: the restart of local SGD, post-local SGD and
// PR-SGD-Momentum (Yu, Jin, Yang, ICML 2019). Workers take local steps and, every
// `period` steps (I, the period of the restart), replace the registered buffers by
// their exact average over the ranks: x = avg(x), and for PR-SGD-Momentum also
// u = avg(u) (the momentum). After `warmup_steps` (W) the periods start counting
// (post-local SGD: the caller averages gradients during the warm-up).
//
// A restart is one allreduce: every registered buffer is packed into one flat
// scratch buffer (one dtype and one device per op), the step-agreement slots
// (step_check.h) are appended, and a single request of its own name goes to the
// engine, so no fusion threshold can split it and the engine's counters
// (core/stats.h) show exactly one allreduce per restart. The restart waits for the
// allreduce: the next local step needs the averaged values.
//
// Threading: one thread at a time per op. Ops of different names may run at once.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/buffer.h"
#include "common/status.h"
#include "core/handle.h"
#include "core/request.h"
#include "ops/restart/checked_sum.h"
#include "ops/restart/pack_memory.h"

namespace braid::restart {

// When restarts happen. Local steps are counted from 1.
struct Schedule {
  int64_t period = 1;        // I (SlowMo: tau)
  int64_t warmup_steps = 0;  // W: no restart during the first W steps

  // Whether local step `step` ends with a restart.
  bool IsRestart(int64_t step) const {
    return step > warmup_steps && (step - warmup_steps) % period == 0;
  }
  Status Validate(const std::string& name) const;
};

struct AveragerOptions {
  // The allreduce's name: the same on every rank, unique among the ops and tensors
  // in flight.
  std::string name;
  Schedule schedule;
};

class PeriodicAverager {
 public:
  static Status Create(EnqueueFn enqueue, const AveragerOptions& options,
                       std::unique_ptr<PeriodicAverager>* out);
  virtual ~PeriodicAverager() = default;

  // Registers what a restart averages: `params` (for SlowMo: the parameters the
  // outer step moves) and `averaged` (optimizer state averaged with them, such as
  // the momentum buffers). All contiguous float32 or float64 buffers of one dtype on
  // one device; the counts, in order, must be the same on every rank. Replaces the
  // earlier registration; the buffers must stay valid until the next one.
  Status SetBuffers(std::vector<BufferView> params, std::vector<BufferView> averaged);

  // Counts one local step and restarts when the schedule says so (*restarted, when
  // not null, tells which). `lr`: the base optimizer's current learning rate (used
  // by SlowMo). A failed restart leaves the buffers as they were; the step counts.
  Status Step(double lr, bool* restarted);
  // Restarts now, without counting a step (e.g. before evaluating or saving).
  Status RestartNow(double lr);

  const std::string& name() const { return name_; }
  const Schedule& schedule() const { return schedule_; }
  // Local steps counted so far (restored from a checkpoint with set_step).
  int64_t step() const { return step_; }
  void set_step(int64_t step) { step_ = step; }
  // Whether the next Step() restarts (so that a caller registers the buffers then).
  bool restart_due() const { return schedule_.IsRestart(step_ + 1); }
  // Elements of the restart allreduce: the registered buffers plus the agreement slots.
  int64_t packed_count() const;

 protected:
  PeriodicAverager(EnqueueFn enqueue, const AveragerOptions& options);

  // Checks what a restart needs besides the buffers.
  virtual Status Validate(double lr) const;
  // Writes the results of a restart: the packed buffer holds the sums over `ranks`.
  virtual Status Finish(int64_t ranks, double lr);

  const std::vector<BufferView>& params() const { return params_; }
  const std::vector<BufferView>& averaged() const { return averaged_; }
  int64_t params_count() const { return params_count_; }
  DataType dtype() const { return dtype_; }
  int device() const { return device_; }
  PackMemory* memory() const { return memory_.get(); }
  bool has_buffers() const { return memory_ != nullptr; }

 private:
  Status Exchange(int64_t* ranks);

  EnqueueFn enqueue_;
  std::string name_;
  Schedule schedule_;
  int64_t step_ = 0;
  std::vector<BufferView> params_;
  std::vector<BufferView> averaged_;
  int64_t params_count_ = 0;
  int64_t averaged_count_ = 0;
  DataType dtype_ = DataType::kFloat32;
  int device_ = kCpuDevice;
  std::unique_ptr<PackMemory> memory_;
};

// Checks that `views` are usable restart buffers of one dtype and device (those of
// the first view, or `*dtype` / `*device` when `fixed`); `what` names them.
Status CheckBuffers(const std::string& name, const char* what, const std::vector<BufferView>& views,
                    bool fixed, DataType* dtype, int* device);

}  // namespace braid::restart
