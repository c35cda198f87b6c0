#include "core/coordinator.h"

#include <pthread.h>

#include <algorithm>
#include <exception>
#include <future>
#include <mutex>
#include <string>
#include <vector>

#include "common/logging.h"

namespace braid {
namespace {

// How long the coordinator watches for the next request after a round that
// completed work, before it sleeps (TensorQueue::WaitForWork).
constexpr int kAfterProgressSpinUs = 100;
// While callers run the rounds (the queue is quiet), the coordinator thread looks
// at the queue this often for work nobody waits for (a single request submitted
// without a wait; a second one wakes it at once, TensorQueue::Add). Every look
// takes the core from the rank's caller for a few microseconds; at 200 us the
// looks cost a 1 MiB allreduce 15 % on a machine with a core per rank...
constexpr int kQuietPollUs = 1000;
// ...and the queue goes back to waking it when no caller has run a round for this
// long, or when it finds such work.
constexpr int kQuietEndUs = 2000;
// A round waits until requests have stopped arriving for this long (at most
// kBurstMostUs) when several are waiting (TensorQueue::WaitForBurstEnd).
constexpr int kBurstGapUs = 20;
constexpr int kBurstMostUs = 500;

Clock::duration Millis(double ms) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(ms));
}

}  // namespace

// Runs rounds on a waiting caller's thread while no other thread does. The mutex
// outlives the coordinator (handles keep the driver), so a handle waited for after
// the engine is gone finds no owner instead of a dangling one.
class Coordinator::CallerDriver : public RoundDriver {
 public:
  CallerDriver(Coordinator* owner, TensorQueue* queue) : owner_(owner), queue_(queue) {}

  std::mutex& mutex() { return mutex_; }
  void Detach() {
    std::lock_guard<std::mutex> lock(mutex_);
    owner_ = nullptr;
    queue_ = nullptr;
  }
  // Set on a thread while it runs rounds: a wait from inside a round (a hook)
  // must not try to run one.
  static thread_local bool in_round;
  // A caller is running a round (read without the mutex by the coordinator thread).
  bool caller_driving() const { return caller_driving_.load(std::memory_order_relaxed); }

  bool DriveUntilDone(const Handle& handle) override {
    if (in_round) return false;
    while (!handle.Poll()) {
      std::unique_lock<std::mutex> lock(mutex_, std::try_to_lock);
      if (!lock.owns_lock()) {
        // Another thread runs the rounds; the coordinator thread must not miss
        // this caller's work if that thread is another caller that leaves soon.
        NotifyCoordinator();
        return false;
      }
      if (owner_ == nullptr) return false;
      if (handle.Poll()) return true;
      in_round = true;
      caller_driving_.store(true, std::memory_order_relaxed);
      const bool went_on = owner_->CallerRound();
      caller_driving_.store(false, std::memory_order_relaxed);
      in_round = false;
      if (!went_on) {
        NotifyCoordinator();
        return false;
      }
    }
    return true;
  }

 private:
  void NotifyCoordinator() {
    TensorQueue* queue = queue_.load();
    if (queue != nullptr) queue->Notify();
  }

  std::mutex mutex_;
  Coordinator* owner_;
  std::atomic<TensorQueue*> queue_;  // the engine's; null once detached
  std::atomic<bool> caller_driving_{false};
};

thread_local bool Coordinator::CallerDriver::in_round = false;

namespace {

// True when some group of the round runs on a GPU (on this rank or another).
bool AnyOnDevice(const std::vector<Response>& responses) {
  for (const Response& r : responses) {
    if (r.meta.device != kCpuDevice) return true;
    for (int64_t d : r.devices)
      if (d != kCpuDevice) return true;
  }
  return false;
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
      after_round_(std::move(after_round)),
      driver_(std::make_shared<CallerDriver>(this, queue)) {
  schedule_.round_end = schedule_.spin_until = Clock::now();
}

Coordinator::~Coordinator() {
  RequestStop();
  Join();
  driver_->Detach();
}

std::shared_ptr<RoundDriver> Coordinator::driver() const {
  return driver_;
}

void Coordinator::Start(std::function<void()> on_start) {
  running_ = true;
  // Start returns once the thread is named and placed, so that whoever looks at the
  // process's threads after init sees it as it will run.
  std::promise<void> placed;
  std::future<void> ready = placed.get_future();
  thread_ = std::thread([this, &placed, on_start = std::move(on_start)] {
    // Named so that top -H, /proc/<pid>/task and debuggers show which thread it is.
    pthread_setname_np(pthread_self(), "braid-coord");
    if (on_start) on_start();
    placed.set_value();
    Loop();
  });
  ready.wait();
}

void Coordinator::RequestStop() {
  stop_requested_ = true;
  queue_->Wake();
}

void Coordinator::Join() {
  if (thread_.joinable()) thread_.join();
}

Clock::time_point Coordinator::NextDeadline(const Schedule& schedule) const {
  return schedule.round_end +
         Millis(schedule.anyone_waiting ? config_.cycle_time_ms : config_.idle_cycle_time_ms);
}

void Coordinator::Loop() {
  Status failure;
  try {
    failure = RunRounds();
  } catch (const std::exception& e) {
    // Not expected (what can fail is a Status): the callers must not wait forever.
    failure = Internal(std::string("internal error in braid's coordinator: ") + e.what());
    std::lock_guard<std::mutex> lock(driver_->mutex());
    finished_ = true;
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

// Rounds until a shutdown (OK) or a control-plane failure, on this rank's own
// thread or on a waiting caller's.
Status Coordinator::RunRounds() {
  CallerDriver::in_round = true;  // for good: this thread only runs rounds
  std::unique_lock<std::mutex> lock(driver_->mutex());
  while (true) {
    const Schedule schedule = schedule_;
    lock.unlock();
    // Sleep until new work arrives or the cycle deadline passes.
    queue_->WaitForWork(WakeTime(schedule), schedule.spin_until);
    queue_->WaitForBurstEnd(std::chrono::microseconds(kBurstGapUs),
                            std::chrono::microseconds(kBurstMostUs));
    lock.lock();
    if (!deferred_.empty()) {
      std::vector<Response> responses = std::move(deferred_);
      deferred_.clear();
      executor_.Execute(responses, &negotiation_start_, queue_, deferred_joined_);
    }
    if (finished_) return finish_status_;
    if (queue_->quiet()) EndQuiet();
    // A waiting caller may have run the round that this wake-up was for.
    if (!queue_->HasWork() && !stop_requested_ && Clock::now() < NextDeadline(schedule_)) {
      continue;
    }
    bool stop = false;
    const Status status = OneRound(/*on_caller=*/false, &stop);
    if (!status.ok() || stop) {
      finished_ = true;
      finish_status_ = status;
      return status;
    }
  }
}

Clock::time_point Coordinator::WakeTime(const Schedule& schedule) const {
  const Clock::time_point deadline = NextDeadline(schedule);
  if (!queue_->quiet()) return deadline;
  return std::min(deadline, Clock::now() + std::chrono::microseconds(kQuietPollUs));
}

// Quiet ends when work waits that no caller took (someone submits without
// waiting at once: it must not wait for the next look) or when the callers have
// stopped running rounds.
void Coordinator::EndQuiet() {
  const bool untaken = queue_->HasWork() && !driver_->caller_driving();
  const bool stale = Clock::now() - last_caller_round_ > std::chrono::microseconds(kQuietEndUs);
  if (untaken || stale) queue_->SetQuiet(false);
}

bool Coordinator::CallerRound() {
  if (finished_ || stop_requested_ || !deferred_.empty()) return false;
  bool stop = false;
  Status status;
  try {
    status = OneRound(/*on_caller=*/true, &stop);
  } catch (const std::exception& e) {
    status = Internal(std::string("internal error in braid's coordinator: ") + e.what());
  }
  if (!status.ok() || stop) {
    // The coordinator thread ends the engine (closing the queue fails what is left).
    finished_ = true;
    finish_status_ = status;
    queue_->Wake();
    return false;
  }
  if (!deferred_.empty()) return false;
  last_caller_round_ = Clock::now();
  queue_->SetQuiet(true);
  return true;
}

Status Coordinator::OneRound(bool on_caller, bool* stop) {
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
  schedule_.round_end = Clock::now();
  if (after_round_) after_round_(round.responses);
  if (on_caller && AnyOnDevice(round.responses)) {
    deferred_ = std::move(round.responses);
    deferred_joined_ = round.joined_here;
    queue_->Wake();
  } else {
    executor_.Execute(round.responses, &negotiation_start_, queue_, round.joined_here);
  }
  *stop = round.shutdown;
  schedule_.anyone_waiting = round.anyone_waiting;
  schedule_.spin_until = Clock::now();
  if (round.waiting_here) {
    // A rank with names pending goes straight into the next round and waits
    // there (spinning briefly, then sleeping between checks), so a late rank
    // that submits finds it ready.
    schedule_.round_end -= Millis(config_.idle_cycle_time_ms);
  } else if (!round.responses.empty() && !on_caller) {
    // After progress the caller's next request (the next step of a loop, the
    // next gradient of a backward pass) usually comes within microseconds:
    // watch for it instead of sleeping, so that it is taken into the very next
    // round. A round without it would not help the others: nothing this rank
    // has not submitted can become ready. (After a caller's round the caller
    // takes its next request itself.)
    schedule_.spin_until += std::chrono::microseconds(kAfterProgressSpinUs);
  }
  return Status::OK();
}

}  // namespace braid
