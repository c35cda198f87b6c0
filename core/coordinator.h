// The coordinator: the engine's background thread. Each cycle it takes the newly
// submitted requests, runs a negotiation round with the other ranks, and executes
// what they agreed on.
//
// Every wait for the other ranks (a round, a collective) is watched: past the
// stall timeout the job ends on every rank (core/watchdog.h).
//
// It never spins for long: between rounds it sleeps on the tensor queue's
// condition variable. New work wakes it at once; otherwise it wakes after the
// cycle time when some rank still waits (so that late ranks are met), or after the
// longer idle cycle time when nobody does (so that shutdowns and stalls are
// noticed). Right after a round that completed work it watches the queue for
// about 100 us before sleeping: the next request of a loop usually follows.
//
// Caller-driven rounds: a thread that waits for a handle (Handle::Wait) runs the
// rounds itself while no other thread does, and returns as soon as its handle is
// done. That saves the two thread hand-offs of a small collective (the
// coordinator's wake-up, then the waiter's), which cost more than the collective
// on a machine with a core per rank (docs/engine.md, "Fixed cost"). One mutex
// admits one thread at a time to the rounds, so the ranks still execute the same
// responses in the same order; the background thread goes on doing the rounds
// nobody waits for. Groups on a GPU are never executed on a caller's thread (the
// device plane sets the thread's current device): a caller that meets one leaves
// the round's execution to the background thread and waits.
//
// Threading: Start/RequestStop/Join are called by the engine's owner thread;
// driver() may be handed to any thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "collectives/transport.h"
#include "core/config.h"
#include "core/controller.h"
#include "core/executor.h"
#include "core/handle.h"
#include "core/tensor_queue.h"
#include "core/timeline.h"
#include "core/watchdog.h"

namespace braid {

// See EngineOptions::after_round.
using RoundHook = std::function<void(const std::vector<Response>& agreed)>;

class Coordinator {
 public:
  Coordinator(Transport* transport, TensorQueue* queue, const Config& config, Timeline* timeline,
              RoundHook after_round = nullptr);
  ~Coordinator();

  // False when the fusion buffer's address space could not be reserved.
  bool ready() const { return executor_.ok(); }
  // The fusion buffer's reserved range (core/placement.h places it).
  char* fusion_buffer() const { return executor_.fusion_buffer(); }
  int64_t fusion_buffer_bytes() const { return executor_.fusion_buffer_bytes(); }
  // Starts the coordinator thread, which first runs `on_start` (null: nothing).
  void Start(std::function<void()> on_start = nullptr);
  // Asks every rank's coordinator to stop at the next round; pending requests fail.
  void RequestStop();
  void Join();
  bool running() const { return running_; }
  // What a handle's waiter calls to run rounds itself (Handle::SetDriver).
  std::shared_ptr<RoundDriver> driver() const;

 private:
  class CallerDriver;

  // The state of the rounds, shared by the threads that run them.
  struct Schedule {
    bool anyone_waiting = false;
    Clock::time_point round_end;
    Clock::time_point spin_until;  // watch the queue until then after progress
  };

  void Loop();
  Status RunRounds();
  // One round: take new requests, negotiate, execute (on_caller: a waiting
  // caller's thread). Sets *stop after a shutdown round. Holds the driver's mutex.
  Status OneRound(bool on_caller, bool* stop);
  // Run by CallerDriver with its mutex held: false when the caller must wait.
  bool CallerRound();
  // When the coordinator thread next looks at the queue (quiet or not).
  Clock::time_point WakeTime(const Schedule& schedule) const;
  void EndQuiet();
  Clock::time_point NextDeadline(const Schedule& schedule) const;

  TensorQueue* queue_;
  Config config_;
  Timeline* timeline_;
  Controller controller_;
  Watchdog watchdog_;  // before executor_, which reports to it
  Executor executor_;
  RoundHook after_round_;
  std::unordered_map<std::string, Clock::time_point> negotiation_start_;
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> running_{false};

  // Its mutex admits one thread at a time to the rounds; it guards everything
  // below and the controller, executor and negotiation_start_ above.
  std::shared_ptr<CallerDriver> driver_;
  Schedule schedule_;
  // Set when a round ended the engine (shutdown: OK; else the failure).
  bool finished_ = false;
  Status finish_status_;
  // A round a caller negotiated but left to the background thread to execute.
  std::vector<Response> deferred_;
  bool deferred_joined_ = false;
  Clock::time_point last_caller_round_;

  std::thread thread_;
};

}  // namespace braid
