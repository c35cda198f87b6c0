#include "core/tensor_queue.h"

#include <algorithm>
#include <thread>

#include "core/stage_times.h"

namespace braid {

Status TensorQueue::Add(Request request) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) {
      return Status(StatusCode::kAborted,
                    "the braid engine was shut down (on this rank or another); nothing "
                    "runs until every rank calls init again");
    }
    std::string name = request.meta.name;
    if (pending_.count(name)) {
      return Status(StatusCode::kDuplicateName,
                    "a collective named '" + name +
                        "' is already in flight; wait for it before reusing the name");
    }
    fresh_.push_back(request.meta);
    fresh_count_.store(fresh_.size(), std::memory_order_relaxed);
    last_add_.store(request.enqueued_at.time_since_epoch().count(), std::memory_order_relaxed);
    pending_.emplace(std::move(name), Pending{std::move(request), false});
    work_.store(true, std::memory_order_release);
    // A second request before the first was taken: the caller is not waiting for
    // each one in turn (a backward pass submitting its gradients), so the
    // coordinator thread must not wait for its next look at the queue.
    if (fresh_.size() > 1) quiet_.store(false, std::memory_order_relaxed);
  }
  if (!quiet_.load(std::memory_order_relaxed)) work_cv_.notify_one();
  return Status::OK();
}

std::vector<RequestMeta> TensorQueue::TakeNew() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<RequestMeta> out;
  out.swap(fresh_);
  fresh_count_.store(0, std::memory_order_relaxed);
  work_.store(woken_, std::memory_order_relaxed);
  const Clock::time_point now = Clock::now();
  for (const RequestMeta& meta : out) {
    Pending& p = pending_.at(meta.name);
    p.negotiating = true;
    p.request.taken_at = now;
    RecordStage(Stage::kHandoff, now - p.request.enqueued_at);
  }
  return out;
}

void TensorQueue::TakeGroup(const std::vector<Response>& responses, size_t first, size_t count,
                            std::vector<Request>* requests, std::vector<char>* taken) {
  requests->resize(count);
  taken->assign(count, 0);
  std::lock_guard<std::mutex> lock(mutex_);
  for (size_t i = 0; i < count; ++i) {
    (*taken)[i] = TakeLocked(responses[first + i].meta.name, &(*requests)[i]) ? 1 : 0;
  }
}

bool TensorQueue::TakeLocked(const std::string& name, Request* request) {
  auto it = pending_.find(name);
  if (it == pending_.end() || !it->second.negotiating) return false;
  *request = std::move(it->second.request);
  pending_.erase(it);
  return true;
}

void TensorQueue::WaitForWork(Clock::time_point deadline, Clock::time_point spin_until) {
  spin_until = std::min(spin_until, deadline);
  while (!work_.load(std::memory_order_acquire) && Clock::now() < spin_until) {
    std::this_thread::yield();
  }
  std::unique_lock<std::mutex> lock(mutex_);
  work_cv_.wait_until(lock, deadline, [this] { return !fresh_.empty() || woken_; });
  woken_ = false;
  work_.store(!fresh_.empty(), std::memory_order_relaxed);
}

void TensorQueue::WaitForBurstEnd(Clock::duration gap, Clock::duration most) const {
  if (fresh_count_.load(std::memory_order_relaxed) < 2) return;
  const Clock::time_point until = Clock::now() + most;
  while (true) {
    const Clock::time_point now = Clock::now();
    const Clock::time_point last{Clock::duration(last_add_.load(std::memory_order_relaxed))};
    if (now - last >= gap || now >= until) return;
    std::this_thread::yield();
  }
}

void TensorQueue::Notify() {
  work_cv_.notify_one();
}

void TensorQueue::Wake() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    woken_ = true;
    work_.store(true, std::memory_order_release);
  }
  work_cv_.notify_one();
}

void TensorQueue::Close(const Status& status) {
  std::unordered_map<std::string, Pending> failed;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
    failed.swap(pending_);
    fresh_.clear();
  }
  for (auto& entry : failed) entry.second.request.handle->Complete(status);
}

void TensorQueue::Reopen() {
  std::lock_guard<std::mutex> lock(mutex_);
  closed_ = false;
  woken_ = false;
  work_.store(false, std::memory_order_relaxed);
}

size_t TensorQueue::pending() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return pending_.size();
}

}  // namespace braid
