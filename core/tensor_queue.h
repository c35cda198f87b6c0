// The pending table: requests waiting for the ranks to agree, keyed by name, plus
// the list of names the coordinator has not seen yet. Framework threads add; the
// coordinator takes.
//
// Threading: every method is thread-safe. Add() may be called from any number of
// threads; the Take*/Wait methods are for the coordinator thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "core/request.h"

namespace braid {

class TensorQueue {
 public:
  // Fails with kDuplicateName when a request with the same name is in flight, and
  // with kAborted after Close().
  Status Add(Request request);

  // Metadata of the requests added since the last call, in arrival order. From
  // now on they are under negotiation: Take may hand them out.
  std::vector<RequestMeta> TakeNew();

  // Removes and returns the pending requests named by responses[first, first +
  // count) (a fused group, or one response), under one lock: (*taken)[i] says
  // whether (*requests)[i] holds the request named by responses[first + i]. A name
  // is not taken when there is no such request or it has not been taken into
  // negotiation by TakeNew yet: a request added after a round started was never
  // negotiated, and an answer in that round for the same name (a stall timeout, a
  // join's stand-in) is not its answer.
  void TakeGroup(const std::vector<Response>& responses, size_t first, size_t count,
                 std::vector<Request>* requests, std::vector<char>* taken);

  // Sleeps until a request is added, Wake() is called or `deadline` passes.
  // Returns at once if new requests are waiting. Until `spin_until` it polls
  // instead of sleeping (yielding the core between checks): right after a
  // collective the caller's next request usually follows within microseconds, and
  // a sleeping thread takes several to wake.
  void WaitForWork(Clock::time_point deadline, Clock::time_point spin_until = {});
  void Wake();
  // Returns once no request has been added for `gap`, or after `most`; at once
  // when fewer than two requests wait. A burst of requests (a loop that submits
  // many tensors, a framework that submits a model's gradients together) is then
  // taken into one round instead of a round per few tensors, each fighting the
  // submitting thread for the queue's lock.
  void WaitForBurstEnd(Clock::duration gap, Clock::duration most) const;
  // Quiet: Add() does not wake the coordinator thread, because the callers that
  // wait run the rounds themselves (core/coordinator.h) and the coordinator thread
  // looks at the queue every little while anyway. A second request added before
  // the first was taken ends the quiet. Notify() wakes it all the same.
  void SetQuiet(bool quiet) { quiet_.store(quiet, std::memory_order_relaxed); }
  bool quiet() const { return quiet_.load(std::memory_order_relaxed); }
  void Notify();
  // New requests are waiting, or Wake() was called since the last wait.
  bool HasWork() const { return work_.load(std::memory_order_acquire); }

  // Refuses further requests and fails every pending one with `status`.
  void Close(const Status& status);
  // Accepts requests again (after a re-init).
  void Reopen();

  size_t pending() const;

 private:
  bool TakeLocked(const std::string& name, Request* request);

  mutable std::mutex mutex_;
  std::condition_variable work_cv_;
  struct Pending {
    Request request;
    bool negotiating = false;  // handed out by TakeNew
  };
  std::unordered_map<std::string, Pending> pending_;
  std::vector<RequestMeta> fresh_;
  bool woken_ = false;
  // fresh_ is non-empty or woken_ is set: read without the lock while polling.
  std::atomic<bool> work_{false};
  std::atomic<bool> quiet_{false};
  // Requests in fresh_, and when the last one was added (Clock ticks).
  std::atomic<size_t> fresh_count_{0};
  std::atomic<Clock::rep> last_add_{0};
  bool closed_ = false;
};

}  // namespace braid
