#include "ops/restart/slowmo.h"

#include <cmath>

namespace braid::restart {

Status SlowMo::Create(EnqueueFn enqueue, const SlowMoOptions& options,
                      std::unique_ptr<SlowMo>* out) {
  if (options.name.empty()) return InvalidArgument("a restart op needs a name");
  if (!enqueue) return InvalidArgument("restart '" + options.name + "': no engine to run on");
  BRAID_RETURN_IF_ERROR(options.schedule.Validate(options.name));
  if (!std::isfinite(options.slow_lr) || options.slow_lr <= 0.0) {
    return InvalidArgument("SlowMo '" + options.name + "': slow_lr must be positive (got " +
                           std::to_string(options.slow_lr) + ")");
  }
  if (!std::isfinite(options.slow_momentum) || options.slow_momentum < 0.0) {
    return InvalidArgument("SlowMo '" + options.name +
                           "': slow_momentum must not be negative (got " +
                           std::to_string(options.slow_momentum) + ")");
  }
  out->reset(new SlowMo(std::move(enqueue), options));
  return Status::OK();
}

SlowMo::SlowMo(EnqueueFn enqueue, const SlowMoOptions& options)
    : PeriodicAverager(std::move(enqueue), AveragerOptions{options.name, options.schedule}),
      options_(options) {}

Status SlowMo::SetSlowBuffers(const BufferView& slow_params, const BufferView& slow_momentum) {
  DataType dtype = DataType::kFloat32;
  int device = kCpuDevice;
  BRAID_RETURN_IF_ERROR(
      CheckBuffers(name(), "the slow", {slow_params, slow_momentum}, false, &dtype, &device));
  if (slow_params.count != slow_momentum.count) {
    return InvalidArgument("SlowMo '" + name() + "': x_old has " +
                           std::to_string(slow_params.count) + " elements but s has " +
                           std::to_string(slow_momentum.count));
  }
  x_old_ = slow_params;
  s_ = slow_momentum;
  have_slow_ = true;
  return Status::OK();
}

// The slow buffers must match the parameters registered now (both can be replaced
// independently, so this is checked when they are used).
Status SlowMo::CheckSlowBuffers() const {
  if (!has_buffers()) {
    return InvalidArgument("SlowMo '" + name() + "': no buffers registered (SetBuffers)");
  }
  if (!have_slow_) {
    return InvalidArgument("SlowMo '" + name() + "': no slow buffers registered (SetSlowBuffers)");
  }
  if (x_old_.count != params_count() || x_old_.dtype != dtype() || x_old_.device != device()) {
    return InvalidArgument("SlowMo '" + name() + "': the slow buffers hold " +
                           std::to_string(x_old_.count) + " " + DataTypeName(x_old_.dtype) +
                           " on " + DeviceName(x_old_.device) + ", the parameters " +
                           std::to_string(params_count()) + " " + DataTypeName(dtype()) + " on " +
                           DeviceName(device()));
  }
  return Status::OK();
}

Status SlowMo::InitSlowParams() {
  BRAID_RETURN_IF_ERROR(CheckSlowBuffers());
  return memory()->Gather(params(), x_old_.data, 0);
}

Status SlowMo::Validate(double lr) const {
  if (!std::isfinite(lr) || lr <= 0.0) {
    return InvalidArgument("SlowMo '" + name() +
                           "': the base learning rate must be positive (got " + std::to_string(lr) +
                           "); the slow momentum is scaled by 1/lr");
  }
  return CheckSlowBuffers();
}

Status SlowMo::Finish(int64_t ranks, double lr) {
  SlowMoCoefficients c;
  c.inv_ranks = 1.0 / static_cast<double>(ranks);
  c.inv_lr = 1.0 / lr;
  c.beta = options_.slow_momentum;
  c.alpha_lr = options_.slow_lr * lr;
  c.nesterov = options_.nesterov;
  BRAID_RETURN_IF_ERROR(memory()->SlowMoUpdate(params(), x_old_, s_, c));
  return memory()->Scatter(params_count(), c.inv_ranks, averaged());
}

}  // namespace braid::restart
