// Completion of the device data plane's collectives: the waiting thread neither
// spins nor hangs.
//
// Wait() records an event (cudaEventBlockingSync) on the context's stream and
// sleeps in cudaEventSynchronize: the driver wakes it when the stream reaches the
// event, with no core busy-polling. Meanwhile a watchdog thread wakes every
// `poll_interval_us` (at least 100 us) to check ncclCommGetAsyncError and the stall
// deadline. An asynchronous NCCL error, or a collective still running
// `stall_timeout_seconds` after its wait began (0: never), aborts the
// communicator (ncclCommAbort): its kernels exit, the stream reaches the event and
// Wait() returns the error (kBackendError for NCCL's error, kAborted for a stall).
// While nothing is being waited for, the watchdog sleeps on a condition variable.
//
// Limits: the deadline starts once the collective is enqueued (NCCL's lazy
// connection set-up inside the first enqueue of a kind is not covered), and the
// abort ends NCCL's waits only: work on the stream that is not NCCL's and never
// finishes (a producer stream the collective was ordered after) keeps Wait()
// blocked after the abort until it finishes.
//
// Threading: Wait() is called by one thread at a time. The watchdog calls NCCL
// only while a Wait() is in progress, when the waiting thread is not inside an
// NCCL call (a communicator is not thread-safe).
#pragma once

#include <cuda_runtime_api.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "collectives/nccl/nccl_context.h"
#include "common/status.h"

namespace braid {
namespace nccl {

constexpr int kMinPollIntervalUs = 100;

class CompletionWaiter {
 public:
  // `context` is borrowed and must outlive the waiter.
  static Status Create(NcclContext* context, double stall_timeout_seconds, int poll_interval_us,
                       std::unique_ptr<CompletionWaiter>* out);
  ~CompletionWaiter();

  CompletionWaiter(const CompletionWaiter&) = delete;
  CompletionWaiter& operator=(const CompletionWaiter&) = delete;

  // Waits for everything enqueued on the context's stream so far. Not OK: a CUDA
  // error, or the communicator has an error or stalled and has been aborted.
  Status Wait();

 private:
  CompletionWaiter(NcclContext* context, double stall_timeout_seconds, int poll_interval_us);
  void Watch();
  Status Inspect() const;  // under mu_, while a Wait() is in progress

  NcclContext* const context_;
  const double stall_timeout_seconds_;
  const std::chrono::microseconds poll_interval_;
  cudaEvent_t done_ = nullptr;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool active_ = false;    // a Wait() is in progress
  bool aborting_ = false;  // the watchdog is inside ncclCommAbort
  std::chrono::steady_clock::time_point started_;
  Status verdict_;  // why the watchdog aborted the communicator
  std::thread watchdog_;
};

}  // namespace nccl
}  // namespace braid
