// main() for the GPU suites: runs under mpiexec like the MPI suites, and exits with
// 77 (which CTest reports as skipped) when no GPU is visible, saying so.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>
#include <cstdlib>

#include "collectives/cuda/device_memory.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (braid::cuda::VisibleDeviceCount() == 0) {
    if (rank == 0) std::printf("no GPU visible: skipping the GPU tests\n");
    std::fflush(stdout);
    MPI_Finalize();
    // _Exit: no exit handlers. The CUDA runtime's failed probe leaves driver
    // allocations that a sanitizer build's leak check would report as this
    // suite's failure, although no test ran.
    std::_Exit(77);
  }
  if (rank != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int failed = RUN_ALL_TESTS();
  MPI_Finalize();
  return failed;
}
