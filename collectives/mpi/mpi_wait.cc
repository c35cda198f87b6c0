#include "collectives/mpi/mpi_wait.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "collectives/mpi/mpi_check.h"

namespace braid {
namespace mpi {
namespace {

constexpr int kEagerSpinUs = 5;

}  // namespace

Status WaitAllPolitely(int count, MPI_Request* requests, int spin_us, int max_pause_us) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  const Clock::time_point spin_end = start + std::chrono::microseconds(spin_us);
  // The first few microseconds test without yielding: a peer that is already on
  // its way answers within them, and a yield costs a system call each time.
  const Clock::time_point eager_end =
      start + std::chrono::microseconds(std::min(spin_us, kEagerSpinUs));
  int pause_us = 10;
  while (true) {
    int done = 0;
    BRAID_CHECK_MPI(MPI_Testall(count, requests, &done, MPI_STATUSES_IGNORE));
    if (done) return Status::OK();
    const Clock::time_point now = Clock::now();
    if (now < eager_end) continue;
    if (now < spin_end) {
      // With more ranks than cores, the rank being waited for may need this core.
      std::this_thread::yield();
      continue;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(pause_us));
    pause_us = std::min(pause_us * 2, max_pause_us);
  }
}

}  // namespace mpi
}  // namespace braid
