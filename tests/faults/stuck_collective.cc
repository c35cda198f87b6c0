// A rank that never takes its part in a collective the ranks agreed on: the
// last rank's tensor is on the fake device (tests/mpi/fake_device_plane.h) with
// its producer stream held shut, so that rank's coordinator blocks before the
// collective while the others wait inside it. The watchdog must end the job on
// every rank after BRAID_STALL_TIMEOUT_SECONDS with kWatchdogExitCode, naming the
// collective; run by expect_exit.sh under mpiexec.
#include <mpi.h>

#include <cstdio>
#include <memory>
#include <vector>

#include "braid/braid.h"
#include "tests/mpi/fake_device_plane.h"

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  fake::RegisterFakeDevicePlugin();
  if (braid_init() != BRAID_OK) {
    std::fprintf(stderr, "braid_init: %s\n", braid_last_error());
    return 2;
  }
  const int rank = braid_rank(), size = braid_size();
  fake::Stream held;  // never opened on the last rank
  auto gate = std::make_shared<fake::Mark>();
  if (rank == size - 1) held.WaitFor(gate);
  std::vector<float> data(1024, 1.0f);
  int64_t shape[1] = {static_cast<int64_t>(data.size())};
  braid_tensor_t t = {data.data(), BRAID_FLOAT32, 1, shape, 0, &held};
  braid_handle_t h = nullptr;
  if (braid_allreduce_async("stuck.tensor", &t, data.data(), BRAID_SUM, 1.0, 1.0, &h) != BRAID_OK) {
    std::fprintf(stderr, "enqueue: %s\n", braid_last_error());
    return 2;
  }
  const int rc = braid_wait(h);
  // Not reached: the watchdog ends the job first.
  std::fprintf(stderr, "rank %d: the stuck collective returned %d (%s)\n", rank, rc,
               braid_handle_error(h));
  gate->Reach();
  braid_handle_free(h);
  braid_shutdown();
  MPI_Finalize();
  return 0;
}
