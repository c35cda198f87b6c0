// braid-idle-cpu: how much CPU an initialised engine with nothing to do uses.
// Run under mpirun; every rank prints the CPU time its process used while it slept
// for the given seconds (default 10), as a share of one core. The engine's
// coordinator thread is the only thing running in the process meanwhile.
#include <braid/braid.h>
#include <mpi.h>

#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace {

double ProcessCpuSeconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  const int seconds = argc > 1 ? std::atoi(argv[1]) : 10;
  if (seconds <= 0 || braid_init() != BRAID_OK) {
    std::fprintf(stderr, "usage: braid-idle-cpu [SECONDS > 0] (%s)\n", braid_last_error());
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  const double before = ProcessCpuSeconds();
  sleep(static_cast<unsigned>(seconds));
  const double used = ProcessCpuSeconds() - before;
  std::printf("rank %d: idle engine used %.3f s of CPU in %d s (%.2f%% of a core)\n", braid_rank(),
              used, seconds, 100.0 * used / seconds);
  braid_shutdown();
  MPI_Finalize();
  return 0;
}
