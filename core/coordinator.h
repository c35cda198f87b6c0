// The coordinator: the engine's background thread. Each cycle it takes the newly
// submitted requests, runs a negotiation round with the other ranks, and executes
// what they agreed on.
//
// Every wait for the other ranks (a round, a collective) is watched: past the
// stall timeout the job ends on every rank (core/watchdog.h).
//
// It never spins: between rounds it sleeps on the tensor queue's condition
// variable. New work wakes it at once; otherwise it wakes after the cycle time when
// some rank still waits (so that late ranks are met), or after the longer idle
// cycle time when nobody does (so that shutdowns and stalls are noticed).
//
// Threading: Start/RequestStop/Join are called by the engine's owner thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>

#include "collectives/transport.h"
#include "core/config.h"
#include "core/controller.h"
#include "core/executor.h"
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
  void Start();
  // Asks every rank's coordinator to stop at the next round; pending requests fail.
  void RequestStop();
  void Join();
  bool running() const { return running_; }

 private:
  void Loop();
  Status RunRounds();
  Clock::time_point NextDeadline(Clock::time_point round_end, bool anyone_waiting) const;

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
  std::thread thread_;
};

}  // namespace braid
