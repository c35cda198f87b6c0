#include "collectives/mpi/mpi_wait.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "collectives/mpi/mpi_check.h"

namespace braid {
namespace mpi {

Status WaitAllPolitely(int count, MPI_Request* requests, int spin_us, int max_pause_us) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point spin_end = Clock::now() + std::chrono::microseconds(spin_us);
  int pause_us = 10;
  while (true) {
    int done = 0;
    BRAID_CHECK_MPI(MPI_Testall(count, requests, &done, MPI_STATUSES_IGNORE));
    if (done) return Status::OK();
    if (Clock::now() < spin_end) {
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
