#include "ops/restart/periodic_averager.h"

#include "ops/restart/checked_sum.h"
#include "ops/restart/step_check.h"

namespace braid::restart {
namespace {

int64_t Total(const std::vector<BufferView>& views) {
  int64_t n = 0;
  for (const BufferView& v : views) n += v.count;
  return n;
}

}  // namespace

Status Schedule::Validate(const std::string& name) const {
  if (period < 1) {
    return InvalidArgument("restart '" + name + "': the period must be at least 1 (got " +
                           std::to_string(period) + ")");
  }
  if (warmup_steps < 0) {
    return InvalidArgument("restart '" + name + "': warmup_steps must not be negative (got " +
                           std::to_string(warmup_steps) + ")");
  }
  return Status::OK();
}

Status CheckBuffers(const std::string& name, const char* what, const std::vector<BufferView>& views,
                    bool fixed, DataType* dtype, int* device) {
  for (size_t i = 0; i < views.size(); ++i) {
    const BufferView& v = views[i];
    const std::string which =
        "restart '" + name + "': " + what + " buffer " + std::to_string(i) + " ";
    if (!IsRestartDataType(v.dtype)) {
      return InvalidArgument(which + "is " + DataTypeName(v.dtype) +
                             "; restart ops take float32 and float64 buffers");
    }
    if (v.count < 0 || (v.count > 0 && v.data == nullptr)) {
      return InvalidArgument(which + "has a null pointer or a negative count");
    }
    if (!fixed && i == 0) {
      *dtype = v.dtype;
      *device = v.device;
      continue;
    }
    if (v.dtype != *dtype || v.device != *device) {
      return InvalidArgument(which + "is " + DataTypeName(v.dtype) + " on " + DeviceName(v.device) +
                             ", the others " + DataTypeName(*dtype) + " on " + DeviceName(*device) +
                             ": one op takes one dtype on one device (use one op per group)");
    }
  }
  return Status::OK();
}

Status PeriodicAverager::Create(EnqueueFn enqueue, const AveragerOptions& options,
                                std::unique_ptr<PeriodicAverager>* out) {
  if (options.name.empty()) return InvalidArgument("a restart op needs a name");
  if (!enqueue) return InvalidArgument("restart '" + options.name + "': no engine to run on");
  BRAID_RETURN_IF_ERROR(options.schedule.Validate(options.name));
  out->reset(new PeriodicAverager(std::move(enqueue), options));
  return Status::OK();
}

PeriodicAverager::PeriodicAverager(EnqueueFn enqueue, const AveragerOptions& options)
    : enqueue_(std::move(enqueue)), name_(options.name), schedule_(options.schedule) {}

Status PeriodicAverager::SetBuffers(std::vector<BufferView> params,
                                    std::vector<BufferView> averaged) {
  if (params.empty() && averaged.empty()) {
    return InvalidArgument("restart '" + name_ + "': no buffers given");
  }
  std::vector<BufferView> all = params;
  all.insert(all.end(), averaged.begin(), averaged.end());
  DataType dtype = DataType::kFloat32;
  int device = kCpuDevice;
  BRAID_RETURN_IF_ERROR(CheckBuffers(name_, "the", all, false, &dtype, &device));
  if (memory_ == nullptr || dtype != dtype_ || device != device_) {
    std::unique_ptr<PackMemory> memory;
    BRAID_RETURN_IF_ERROR(PackMemory::Create(device, dtype, name_, &memory));
    memory_ = std::move(memory);
  }
  dtype_ = dtype;
  device_ = device;
  params_ = std::move(params);
  averaged_ = std::move(averaged);
  params_count_ = Total(params_);
  averaged_count_ = Total(averaged_);
  return Status::OK();
}

int64_t PeriodicAverager::packed_count() const {
  return params_count_ + averaged_count_ + kCheckSlots;
}

Status PeriodicAverager::Step(double lr, bool* restarted) {
  if (restarted != nullptr) *restarted = false;
  ++step_;
  if (!schedule_.IsRestart(step_)) return Status::OK();
  BRAID_RETURN_IF_ERROR(RestartNow(lr));
  if (restarted != nullptr) *restarted = true;
  return Status::OK();
}

Status PeriodicAverager::Validate(double) const {
  return Status::OK();
}

Status PeriodicAverager::RestartNow(double lr) {
  if (!has_buffers()) {
    return InvalidArgument("restart '" + name_ + "': no buffers registered (SetBuffers)");
  }
  BRAID_RETURN_IF_ERROR(Validate(lr));
  int64_t ranks = 0;
  BRAID_RETURN_IF_ERROR(Exchange(&ranks));
  return Finish(ranks, lr);
}

// Packs the buffers and the agreement slots, runs the one allreduce (a sum), and
// checks the slots.
Status PeriodicAverager::Exchange(int64_t* ranks) {
  std::vector<BufferView> parts = params_;
  parts.insert(parts.end(), averaged_.begin(), averaged_.end());
  CheckedSum sum;
  sum.name = name_;
  sum.step = step_;
  sum.dtype = dtype_;
  sum.device = device_;
  sum.stream = params_.empty() ? averaged_[0].stream : params_[0].stream;
  return SumWithStepCheck(enqueue_, sum, parts, memory_.get(), ranks);
}

Status PeriodicAverager::Finish(int64_t ranks, double) {
  const double inv = 1.0 / static_cast<double>(ranks);
  BRAID_RETURN_IF_ERROR(memory_->Scatter(0, inv, params_));
  return memory_->Scatter(params_count_, inv, averaged_);
}

}  // namespace braid::restart
