#include "core/watchdog.h"

#include <algorithm>
#include <sstream>

#include "common/logging.h"

namespace braid {
namespace {

Clock::duration Seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

}  // namespace

Watchdog::Watchdog(double timeout_seconds, int rank, int size, Expiry on_expiry)
    : timeout_(Seconds(timeout_seconds)),
      rank_(rank),
      size_(size),
      on_expiry_(std::move(on_expiry)) {
  if (timeout_seconds > 0) thread_ = std::thread([this] { Run(); });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Watchdog::Start(const char* what, const Response* first, size_t count) {
  if (!thread_.joinable()) return;
  std::lock_guard<std::mutex> lock(mutex_);
  armed_ = true;
  since_ = Clock::now();
  what_ = what;
  first_ = first;
  count_ = count;
  if (count > 0) ++collectives_;
}

void Watchdog::Done() {
  if (!thread_.joinable()) return;
  std::lock_guard<std::mutex> lock(mutex_);
  armed_ = false;
}

// Checks a few times per timeout: a step is reported at most a tenth of the
// timeout (and at most a second) late, and the job ends two periods later.
void Watchdog::Run() {
  const Clock::duration period = std::clamp<Clock::duration>(
      timeout_ / 10, std::chrono::milliseconds(5), std::chrono::seconds(1));
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    stop_cv_.wait_for(lock, period, [this] { return stopping_; });
    if (stopping_ || !armed_) continue;
    const Clock::duration waited = Clock::now() - since_;
    if (waited < timeout_) continue;
    // Built under the lock: the step's responses stay alive until Done(), which
    // waits for it.
    const std::string report = Report(std::chrono::duration<double>(waited).count());
    armed_ = false;
    lock.unlock();
    BRAID_LOG(Error) << report;
    // The other ranks' watchdogs expire within a period of this one: let them
    // print their reports before the job goes.
    std::this_thread::sleep_for(2 * period);
    on_expiry_(report);
    return;
  }
}

std::string Watchdog::Report(double waited) const {
  std::ostringstream s;
  s << "rank " << rank_ << " of " << size_ << " has waited " << waited << " s in ";
  if (count_ == 0) {
    s << what_;
  } else {
    s << "collective #" << collectives_ << ", " << CollectiveName(first_->meta.collective)
      << " of ";
    const size_t shown = std::min<size_t>(count_, 3);
    for (size_t i = 0; i < shown; ++i) s << (i ? ", '" : "'") << first_[i].meta.name << "'";
    if (count_ > shown) s << " and " << count_ - shown << " more";
    s << " (" << DeviceName(first_->meta.device) << ")";
  }
  s << ", longer than BRAID_STALL_TIMEOUT_SECONDS. Every rank agreed to run it; the "
       "ranks that report the same collective number were waiting in it too, any other "
       "rank never reached it (dead, stopped, or stuck elsewhere). Ending the job on "
       "every rank.";
  return s.str();
}

}  // namespace braid
