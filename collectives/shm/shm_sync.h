// Synchronisation of the ranks sharing a segment: one progress counter per rank
// (its phase), in the segment. A rank that has finished a step of a collective
// raises its phase and wakes whoever sleeps on it; a rank that needs the others'
// step waits until every counter has reached its own.
//
// A waiter spins briefly (a few microseconds of pause instructions: a peer on
// another core is usually about to arrive), then sleeps in the kernel with a
// shared (not FUTEX_PRIVATE) futex on the peer's counter. Ranks are often more
// than cores, and spinning then steals the time slice of the rank being waited
// for, so the spin is kept short. The futex sleeps at most kWakeCheckMs at a
// time, so that a waiter notices Abort() and a peer process that has died (its
// pid is gone) instead of blocking for ever; the engine's watchdog ends a job
// stalled in here, and a signal ends the process at once.
//
// Threading: a ShmSync is driven by one thread at a time (the backend's);
// Abort() may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "common/status.h"

namespace braid {
namespace shm {

// One rank's control block in the segment, on a cache line of its own so that a
// rank raising its phase does not disturb the lines the others spin on.
struct alignas(128) RankControl {
  // Steps this rank has finished; the futex word. Wraps around (compared modulo
  // 2^32).
  std::atomic<uint32_t> phase;
  // How many peers sleep (or are about to) on `phase`: the rank raising it calls
  // FUTEX_WAKE only when someone may sleep.
  std::atomic<uint32_t> sleepers;
  // The process, for the liveness check of waiters.
  std::atomic<int32_t> pid;
};

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t), "futex word must be 32 bits");

// How long a waiter spins before it sleeps: with a core per rank, and with more
// ranks than cores (docs/shm.md has the measurements).
constexpr int kSpinMicrosPerCore = 50;
constexpr int kSpinMicrosOversubscribed = 5;
constexpr int kSpinsPerClockRead = 32;
constexpr int kWakeCheckMs = 100;  // longest single futex sleep
constexpr int kLivenessCheckMs = 1000;

class ShmSync {
 public:
  // `controls` points at `size` RankControl blocks in the segment, zeroed before
  // any rank started.
  ShmSync(RankControl* controls, int rank, int size);

  // Publishes this rank's own pid (at set-up, before the first step).
  void Register(int32_t pid);

  // Ends this rank's current step and waits until every rank has ended it. The
  // writes this rank made to the segment before the call are visible to every
  // rank after theirs returns (release / acquire on the counters).
  Status ArriveAndWait();

  // Makes waits return an error from now on; from any thread.
  void Abort() { aborted_.store(true); }

 private:
  void Arrive();
  Status WaitFor(int peer, uint32_t target);
  Status SleepOn(int peer, uint32_t target);

  RankControl* controls_;
  int rank_;
  int size_;
  std::chrono::microseconds spin_;
  uint32_t phase_ = 0;
  std::atomic<bool> aborted_{false};
};

}  // namespace shm
}  // namespace braid
