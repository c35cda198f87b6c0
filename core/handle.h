// Handle: the caller's side of one asynchronous operation. The coordinator
// completes it exactly once; any number of threads may poll or wait on it.
//
// Threading: all methods are thread-safe. Output() and status() are only
// meaningful after the handle is done.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "common/status.h"
#include "common/types.h"
#include "core/buffer_pool.h"

namespace braid {

class Handle;

// Lets a caller that waits for a handle run the engine's rounds itself, on its
// own thread, instead of handing the work to the coordinator thread and sleeping
// until it is woken (core/coordinator.h, "Caller-driven rounds").
class RoundDriver {
 public:
  virtual ~RoundDriver() = default;
  // Runs rounds on the calling thread until `handle` is done. Returns false as soon
  // as it cannot (another thread is running a round, the engine stopped, the work
  // must run on the coordinator thread); the caller then waits as usual.
  virtual bool DriveUntilDone(const Handle& handle) = 0;
};

class Handle {
 public:
  bool Poll() const;
  // Blocks until the operation has finished; returns its status. With a driver, the
  // caller first runs the rounds that complete it itself, when it can; otherwise
  // (and after) it sleeps on a condition variable. (Watching for the completion
  // before sleeping was measured and dropped: on a machine with a core per rank the
  // watching caller takes the core from the coordinator that would complete it;
  // docs/engine.md, "Fixed cost".)
  Status Wait();
  // Marks the operation finished and wakes the waiters. Later calls are ignored.
  void Complete(Status status);
  // Set once, before the handle is returned to the caller (Engine::Enqueue).
  void SetDriver(std::shared_ptr<RoundDriver> driver) { driver_ = std::move(driver); }
  Status status() const;

  // Output owned by the handle (allgather): set by the coordinator before
  // completion, read by the caller after it. The buffer returns to its pool when
  // the handle is destroyed.
  void SetOutput(PooledBuffer buffer, std::vector<int64_t> shape);
  // The same for an output in device memory (`memory` points at it).
  void SetDeviceOutput(std::shared_ptr<void> memory, std::vector<int64_t> shape, int device);
  const char* output_data() const {
    return device_output_ ? static_cast<const char*>(device_output_.get()) : output_.data();
  }
  const std::vector<int64_t>& output_shape() const { return output_shape_; }
  int output_device() const { return output_device_; }

  // Sparse allgather: the output holds every rank's indices from its start and
  // their values from `values_offset` bytes; `pairs` is each rank's pair count.
  void SetSparseLayout(std::vector<int64_t> pairs, int64_t values_offset) {
    pairs_ = std::move(pairs);
    values_offset_ = values_offset;
  }
  const std::vector<int64_t>& pairs() const { return pairs_; }
  int64_t values_offset() const { return values_offset_; }

  // Integer result (join: the rank that joined last): set by the coordinator
  // before completion, read by the caller after it.
  void SetIntResult(int64_t value) { int_result_ = value; }
  int64_t int_result() const { return int_result_; }

 private:
  mutable std::mutex mutex_;
  std::condition_variable done_cv_;
  bool done_ = false;
  std::shared_ptr<RoundDriver> driver_;
  Status status_;
  std::chrono::steady_clock::time_point completed_at_;  // core/stage_times.h: kWake
  PooledBuffer output_;
  std::shared_ptr<void> device_output_;
  int output_device_ = kCpuDevice;
  std::vector<int64_t> output_shape_;
  int64_t int_result_ = 0;
  std::vector<int64_t> pairs_;
  int64_t values_offset_ = 0;
};

}  // namespace braid
