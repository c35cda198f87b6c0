#include "collectives/nccl/nccl_wait.h"

#include <algorithm>
#include <string>

#include "collectives/cuda/cuda_check.h"
#include "collectives/cuda/device_memory.h"
#include "collectives/nccl/nccl_check.h"

namespace braid {
namespace nccl {
namespace {

Status AsyncError(ncclComm_t comm) {
  ncclResult_t async = ncclSuccess;
  BRAID_CHECK_NCCL(ncclCommGetAsyncError(comm, &async));
  if (async != ncclSuccess) {
    return BackendError("asynchronous NCCL error: " + NcclErrorText(async));
  }
  return Status::OK();
}

std::string Seconds(double s) {
  std::string text = std::to_string(s);
  text.erase(text.find_last_not_of('0') + 1);
  if (!text.empty() && text.back() == '.') text.pop_back();
  return text + " s";
}

}  // namespace

Status CompletionWaiter::Create(NcclContext* context, double stall_timeout_seconds,
                                int poll_interval_us, std::unique_ptr<CompletionWaiter>* out) {
  if (!(stall_timeout_seconds >= 0.0)) {
    return InvalidArgument("nccl: the stall timeout must be >= 0 seconds (0: never)");
  }
  std::unique_ptr<CompletionWaiter> waiter(
      new CompletionWaiter(context, stall_timeout_seconds, poll_interval_us));
  {
    cuda::DeviceGuard guard(context->device());
    BRAID_CHECK_CUDA(cudaSetDevice(context->device()));
    BRAID_CHECK_CUDA(
        cudaEventCreateWithFlags(&waiter->done_, cudaEventBlockingSync | cudaEventDisableTiming));
  }
  waiter->watchdog_ = std::thread(&CompletionWaiter::Watch, waiter.get());
  *out = std::move(waiter);
  return Status::OK();
}

CompletionWaiter::CompletionWaiter(NcclContext* context, double stall_timeout_seconds,
                                   int poll_interval_us)
    : context_(context),
      stall_timeout_seconds_(stall_timeout_seconds),
      poll_interval_(std::max(poll_interval_us, kMinPollIntervalUs)) {}

CompletionWaiter::~CompletionWaiter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
  if (done_ != nullptr) {
    cuda::DeviceGuard guard(context_->device());
    (void)cudaEventDestroy(done_);
  }
}

Status CompletionWaiter::Wait() {
  BRAID_CHECK_CUDA(cudaEventRecord(done_, context_->stream()));
  {
    std::lock_guard<std::mutex> lock(mu_);
    active_ = true;
    started_ = std::chrono::steady_clock::now();
  }
  cv_.notify_all();
  const cudaError_t synced = cudaEventSynchronize(done_);
  {
    std::unique_lock<std::mutex> lock(mu_);
    active_ = false;
    cv_.wait(lock, [this] { return !aborting_; });
    if (!verdict_.ok()) return verdict_;
  }
  if (synced != cudaSuccess) {
    return cuda::CudaError(synced, "cudaEventSynchronize(done_)", __FILE__, __LINE__);
  }
  // The collective finished; an error NCCL noticed meanwhile still fails it.
  return AsyncError(context_->comm());
}

Status CompletionWaiter::Inspect() const {
  BRAID_RETURN_IF_ERROR(AsyncError(context_->comm()));
  if (stall_timeout_seconds_ > 0.0) {
    const std::chrono::duration<double> running = std::chrono::steady_clock::now() - started_;
    if (running.count() >= stall_timeout_seconds_) {
      return Status(StatusCode::kAborted, "still running after " + Seconds(running.count()) +
                                              " (stall timeout " + Seconds(stall_timeout_seconds_) +
                                              ")");
    }
  }
  return Status::OK();
}

// The watchdog: idle until a Wait() begins, then a check every poll interval until
// it ends. It aborts at most once; afterwards the backend takes no more work.
void CompletionWaiter::Watch() {
  // ncclCommAbort makes CUDA calls: give this thread the communicator's device.
  (void)cudaSetDevice(context_->device());
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    if (!active_ || !verdict_.ok()) {
      cv_.wait(lock);
      continue;
    }
    cv_.wait_for(lock, poll_interval_);
    if (stop_ || !active_) continue;
    Status problem = Inspect();
    if (problem.ok()) continue;
    verdict_ = std::move(problem);
    aborting_ = true;
    lock.unlock();
    const Status aborted = context_->Abort();
    lock.lock();
    if (!aborted.ok()) {
      verdict_ = Status(verdict_.code(), verdict_.message() + "; then " + aborted.message());
    }
    aborting_ = false;
    cv_.notify_all();
  }
}

}  // namespace nccl
}  // namespace braid
