#include "core/coordinator.h"

#include <exception>
#include <string>

#include "common/logging.h"

namespace braid {
namespace {

Clock::duration Millis(double ms) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(ms));
}

}  // namespace

Coordinator::Coordinator(Transport* transport, TensorQueue* queue, const Config& config,
                         Timeline* timeline, RoundHook after_round)
    : queue_(queue),
      config_(config),
      timeline_(timeline),
      controller_(transport->control(), config),
      watchdog_(config.stall_timeout_seconds, transport->info().rank, transport->info().size,
                [transport](const std::string&) { transport->Abort(kWatchdogExitCode); }),
      executor_(transport, config.fusion_threshold_bytes, timeline, &watchdog_),
      after_round_(std::move(after_round)) {}

Coordinator::~Coordinator() {
  RequestStop();
  Join();
}

void Coordinator::Start() {
  running_ = true;
  thread_ = std::thread([this] { Loop(); });
}

void Coordinator::RequestStop() {
  stop_requested_ = true;
  queue_->Wake();
}

void Coordinator::Join() {
  if (thread_.joinable()) thread_.join();
}

Clock::time_point Coordinator::NextDeadline(Clock::time_point round_end,
                                            bool anyone_waiting) const {
  return round_end + Millis(anyone_waiting ? config_.cycle_time_ms : config_.idle_cycle_time_ms);
}

void Coordinator::Loop() {
  Status failure;
  try {
    failure = RunRounds();
  } catch (const std::exception& e) {
    // Not expected (what can fail is a Status): the callers must not wait forever.
    failure = Internal(std::string("internal error in braid's coordinator: ") + e.what());
  }
  if (!failure.ok()) {
    BRAID_LOG(Error) << "control plane failed, engine stopped: " << failure.message();
    queue_->Close(Status(failure.code(),
                         "the braid engine stopped after a control-plane "
                         "failure: " +
                             failure.message()));
  } else {
    queue_->Close(Status(StatusCode::kAborted,
                         "the braid engine was shut down (on this rank or another) "
                         "before this operation completed"));
  }
  running_ = false;
}

// Rounds until a shutdown (OK) or a control-plane failure.
Status Coordinator::RunRounds() {
  bool anyone_waiting = false;
  Clock::time_point round_end = Clock::now();
  while (true) {
    // Sleep until new work arrives or the cycle deadline passes.
    queue_->WaitForWork(NextDeadline(round_end, anyone_waiting));
    std::vector<RequestMeta> fresh = queue_->TakeNew();
    // Read the clock after taking: a name enqueued just before TakeNew must not
    // seem to enter negotiation before it was queued.
    const Clock::time_point round_start = Clock::now();
    if (timeline_) {
      for (const RequestMeta& m : fresh) negotiation_start_[m.name] = round_start;
    }
    RoundResult round;
    {
      WatchedStep watched(&watchdog_, "a negotiation round");
      BRAID_RETURN_IF_ERROR(controller_.RunRound(fresh, stop_requested_, &round));
    }
    // The next deadline counts from the round's end, which every rank reaches at
    // about the same moment: their idle rounds stay aligned and nobody waits long.
    round_end = Clock::now();
    if (after_round_) after_round_(round.responses);
    executor_.Execute(round.responses, &negotiation_start_, queue_, round.joined_here);
    if (round.shutdown) return Status::OK();
    anyone_waiting = round.anyone_waiting;
    // A rank with names pending goes straight into the next round and waits there
    // (spinning briefly, then sleeping between checks), so a late rank that
    // submits finds it ready. After progress the others are probably submitting
    // too (a backward pass is under way): meet them at once as well.
    if (round.waiting_here || (anyone_waiting && !round.responses.empty())) {
      round_end -= Millis(config_.idle_cycle_time_ms);
    }
  }
}

}  // namespace braid
