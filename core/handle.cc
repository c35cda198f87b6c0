#include "core/handle.h"

#include "core/stage_times.h"

namespace braid {

bool Handle::Poll() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return done_;
}

Status Handle::Wait() {
  if (driver_ && !Poll()) driver_->DriveUntilDone(*this);
  std::unique_lock<std::mutex> lock(mutex_);
  if (done_) return status_;
  done_cv_.wait(lock, [this] { return done_; });
  RecordStage(Stage::kWake, Clock::now() - completed_at_);
  return status_;
}

void Handle::Complete(Status status) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (done_) return;
    done_ = true;
    status_ = std::move(status);
    completed_at_ = Clock::now();
  }
  done_cv_.notify_all();
}

void Handle::SetOutput(PooledBuffer buffer, std::vector<int64_t> shape) {
  output_ = std::move(buffer);
  output_shape_ = std::move(shape);
}

void Handle::SetDeviceOutput(std::shared_ptr<void> memory, std::vector<int64_t> shape, int device) {
  device_output_ = std::move(memory);
  output_shape_ = std::move(shape);
  output_device_ = device;
}

Status Handle::status() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return status_;
}

}  // namespace braid
