// The pending table: requests waiting for the ranks to agree, keyed by name, plus
// the list of names the coordinator has not seen yet. Framework threads add; the
// coordinator takes.
//
// Threading: every method is thread-safe. Add() may be called from any number of
// threads; the Take*/Wait methods are for the coordinator thread.
#pragma once

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

  // Removes and returns the pending request called `name`; false if there is none
  // or it has not been taken into negotiation by TakeNew yet. A request added
  // after a round started was never negotiated: an answer in that round for the
  // same name (a stall timeout, a join's stand-in) is not its answer.
  bool Take(const std::string& name, Request* request);

  // Sleeps until a request is added, Wake() is called or `deadline` passes.
  // Returns at once if new requests are waiting.
  void WaitForWork(Clock::time_point deadline);
  void Wake();

  // Refuses further requests and fails every pending one with `status`.
  void Close(const Status& status);
  // Accepts requests again (after a re-init).
  void Reopen();

  size_t pending() const;

 private:
  mutable std::mutex mutex_;
  std::condition_variable work_cv_;
  struct Pending {
    Request request;
    bool negotiating = false;  // handed out by TakeNew
  };
  std::unordered_map<std::string, Pending> pending_;
  std::vector<RequestMeta> fresh_;
  bool woken_ = false;
  bool closed_ = false;
};

}  // namespace braid
