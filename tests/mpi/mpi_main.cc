// main() for the GoogleTest suites that run under mpiexec: MPI is initialised
// once for the process, only rank 0 prints results, and the exit code is the same
// on every rank (a failure on any rank fails all).
#include <gtest/gtest.h>
#include <mpi.h>

namespace {

// Silences the default printer on ranks other than 0.
void KeepOutputOnRankZero(int rank) {
  if (rank == 0) return;
  auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
  delete listeners.Release(listeners.default_result_printer());
}

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  ::testing::InitGoogleTest(&argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  KeepOutputOnRankZero(rank);
  int failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  int any_failed = 0;
  MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return any_failed;
}
