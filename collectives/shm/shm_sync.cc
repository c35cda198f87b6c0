#include "collectives/shm/shm_sync.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <csignal>
#include <ctime>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace braid {
namespace shm {
namespace {

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Counters wrap around: `value` has reached `target` when it is at most 2^31
// steps ahead of it.
inline bool Reached(uint32_t value, uint32_t target) {
  return static_cast<int32_t>(value - target) >= 0;
}

uint32_t* FutexWord(std::atomic<uint32_t>* word) {
  return reinterpret_cast<uint32_t*>(word);
}

// Shared futexes: the word lives in memory mapped by several processes.
void FutexWait(std::atomic<uint32_t>* word, uint32_t expected, int timeout_ms) {
  struct timespec timeout;
  timeout.tv_sec = timeout_ms / 1000;
  timeout.tv_nsec = static_cast<long>(timeout_ms % 1000) * 1000000L;
  syscall(SYS_futex, FutexWord(word), FUTEX_WAIT, expected, &timeout, nullptr, 0);
}

void FutexWakeAll(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, FutexWord(word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

bool ProcessGone(int32_t pid) {
  return pid > 0 && kill(pid, 0) != 0 && errno == ESRCH;
}

// A rank per core or fewer: a peer that has not arrived is running, and spinning
// longer saves the futex round trip (tens of microseconds to wake a sleeper). More
// ranks than cores: the peer may be waiting for this rank's core, so give it up
// soon.
std::chrono::microseconds ChooseSpin(int size) {
  const long cores = sysconf(_SC_NPROCESSORS_ONLN);
  if (cores > 0 && size <= cores) return std::chrono::microseconds(kSpinMicrosPerCore);
  return std::chrono::microseconds(kSpinMicrosOversubscribed);
}

}  // namespace

ShmSync::ShmSync(RankControl* controls, int rank, int size)
    : controls_(controls), rank_(rank), size_(size), spin_(ChooseSpin(size)) {}

void ShmSync::Register(int32_t pid) {
  controls_[rank_].pid.store(pid);
}

void ShmSync::Arrive() {
  RankControl& mine = controls_[rank_];
  ++phase_;
  // seq_cst on both sides (here and in SleepOn) orders the store before the load
  // of `sleepers`: either this rank sees a sleeper and wakes it, or the sleeper
  // sees the new phase and never sleeps.
  mine.phase.store(phase_, std::memory_order_seq_cst);
  if (mine.sleepers.load(std::memory_order_seq_cst) != 0) FutexWakeAll(&mine.phase);
}

Status ShmSync::ArriveAndWait() {
  Arrive();
  for (int peer = 0; peer < size_; ++peer) {
    if (peer == rank_) continue;
    BRAID_RETURN_IF_ERROR(WaitFor(peer, phase_));
  }
  return Status::OK();
}

Status ShmSync::WaitFor(int peer, uint32_t target) {
  std::atomic<uint32_t>& phase = controls_[peer].phase;
  if (Reached(phase.load(std::memory_order_acquire), target)) return Status::OK();
  const auto deadline = std::chrono::steady_clock::now() + spin_;
  for (;;) {
    for (int i = 0; i < kSpinsPerClockRead; ++i) {
      if (Reached(phase.load(std::memory_order_acquire), target)) return Status::OK();
      CpuRelax();
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
  }
  return SleepOn(peer, target);
}

Status ShmSync::SleepOn(int peer, uint32_t target) {
  RankControl& other = controls_[peer];
  int slept_ms = 0;
  for (;;) {
    other.sleepers.fetch_add(1, std::memory_order_seq_cst);
    const uint32_t seen = other.phase.load(std::memory_order_seq_cst);
    if (!Reached(seen, target)) FutexWait(&other.phase, seen, kWakeCheckMs);
    other.sleepers.fetch_sub(1, std::memory_order_seq_cst);
    if (Reached(other.phase.load(std::memory_order_acquire), target)) return Status::OK();
    if (aborted_.load()) return Status(StatusCode::kAborted, "shm: the backend was aborted");
    slept_ms += kWakeCheckMs;  // at most; a wake-up only makes the check earlier
    if (slept_ms >= kLivenessCheckMs) {
      slept_ms = 0;
      const int32_t pid = other.pid.load();
      if (ProcessGone(pid)) {
        return BackendError("shm: local rank " + std::to_string(peer) + " (pid " +
                            std::to_string(pid) + ") has exited in the middle of a collective");
      }
    }
  }
}

}  // namespace shm
}  // namespace braid
