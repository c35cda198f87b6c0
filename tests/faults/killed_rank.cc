// A rank killed with SIGKILL in the middle of shared-memory collectives: every
// rank runs 8 MiB allreduces back to back; on the last rank a thread sends the
// process SIGKILL while its coordinator is busy in them. The job must end (mpirun
// ends the other ranks, which wait on the segment with bounded futex sleeps and
// so cannot block the end) and leave no braid segment in /dev/shm (it was
// unlinked at init). Run by killed_rank.sh.
#include <mpi.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "braid/braid.h"

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  if (braid_init() != BRAID_OK) {
    std::fprintf(stderr, "braid_init: %s\n", braid_last_error());
    return 2;
  }
  const int rank = braid_rank(), size = braid_size();
  if (rank == size - 1) {
    std::thread([] {
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));
      std::fprintf(stderr, "killed_rank: sending SIGKILL to pid %d\n", static_cast<int>(getpid()));
      kill(getpid(), SIGKILL);
    }).detach();
  }
  std::vector<float> data(2 << 20, 1.0f);
  int64_t shape[1] = {static_cast<int64_t>(data.size())};
  braid_tensor_t t = {data.data(), BRAID_FLOAT32, 1, shape, BRAID_DEVICE_CPU, nullptr};
  for (int step = 0; step < 1000000; ++step) {
    braid_handle_t h = nullptr;
    if (braid_allreduce_async("killed.tensor", &t, data.data(), BRAID_SUM, 1.0, 1.0, &h) !=
        BRAID_OK) {
      std::fprintf(stderr, "enqueue: %s\n", braid_last_error());
      return 2;
    }
    const int rc = braid_wait(h);
    braid_handle_free(h);
    if (rc != BRAID_OK) {
      std::fprintf(stderr, "rank %d: allreduce %d failed: %d\n", rank, step, rc);
      return 3;
    }
    if (step == 0 && rank == 0) std::fprintf(stderr, "killed_rank: collectives running\n");
  }
  std::fprintf(stderr, "rank %d: all collectives finished; the kill never came\n", rank);
  braid_shutdown();
  MPI_Finalize();
  return 0;
}
