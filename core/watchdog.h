// The watchdog: nothing the coordinator blocks in may hang the job. The
// coordinator marks each step that waits for the other ranks (a negotiation
// round, a collective) with Start() and Done(). A step still running after the
// timeout (BRAID_STALL_TIMEOUT_SECONDS) means some rank will never take its part:
// dead, frozen, or stuck in its device. The watchdog then logs what this rank was
// doing (the step, its tensors, how long, which collective in the sequence every
// rank runs, so that the ranks' reports can be matched) and calls the expiry
// action, which ends the job on every rank (Transport::Abort: ncclCommAbort, then
// MPI_Abort).
//
// Negotiation stalls (a name some ranks never submit) are not the watchdog's: the
// coordinator keeps running rounds, and the stall inspector fails the name.
//
// Cost: Start and Done take an uncontended lock; the watchdog's own thread wakes
// a few times per timeout period (at most once a second, at least every 5 ms)
// and never spins.
//
// Threading: Start/Done on the coordinator thread; the expiry action runs on the
// watchdog's thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "core/request.h"

namespace braid {

// The exit status of every rank when the watchdog ends the job (as timeout(1)'s).
inline constexpr int kWatchdogExitCode = 124;

class Watchdog {
 public:
  using Expiry = std::function<void(const std::string& report)>;

  // timeout_seconds 0: no watchdog (Start and Done do nothing). `rank` and `size`
  // go into the report.
  Watchdog(double timeout_seconds, int rank, int size, Expiry on_expiry);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // The coordinator is about to wait in `what` ("a negotiation round", "the
  // ranks' agreement"...), or in the collective of `count` responses from
  // `first` when count > 0; they must stay alive until Done().
  void Start(const char* what, const Response* first = nullptr, size_t count = 0);
  void Done();

 private:
  void Run();
  std::string Report(double waited) const;

  const Clock::duration timeout_;
  const int rank_;
  const int size_;
  Expiry on_expiry_;
  mutable std::mutex mutex_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  bool armed_ = false;
  Clock::time_point since_;
  const char* what_ = "";
  const Response* first_ = nullptr;
  size_t count_ = 0;
  uint64_t collectives_ = 0;  // started so far: the same sequence on every rank
  std::thread thread_;
};

// Start() for a scope, Done() when it ends (however it ends).
class WatchedStep {
 public:
  WatchedStep(Watchdog* watchdog, const char* what, const Response* first = nullptr,
              size_t count = 0)
      : watchdog_(watchdog) {
    watchdog_->Start(what, first, count);
  }
  ~WatchedStep() { watchdog_->Done(); }
  WatchedStep(const WatchedStep&) = delete;
  WatchedStep& operator=(const WatchedStep&) = delete;

 private:
  Watchdog* watchdog_;
};

}  // namespace braid
