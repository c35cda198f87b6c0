// Wall-clock timing of a loop of collective calls across ranks.
#ifndef BRAID_BENCH_TIMING_H_
#define BRAID_BENCH_TIMING_H_

#include <mpi.h>

#include <chrono>

namespace bench {

inline double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

inline double MaxOverRanks(MPI_Comm comm, double local) {
  double global = local;
  MPI_Allreduce(&local, &global, 1, MPI_DOUBLE, MPI_MAX, comm);
  return global;
}

// Starts all ranks together (MPI_Barrier), runs `body` `iters` times and returns
// the time per call in seconds: the largest over ranks of the local mean.
template <class F>
double TimeCalls(MPI_Comm comm, int iters, F&& body) {
  MPI_Barrier(comm);
  const double start = Now();
  for (int i = 0; i < iters; ++i) body();
  const double mean = (Now() - start) / iters;
  return MaxOverRanks(comm, mean);
}

}  // namespace bench

#endif  // BRAID_BENCH_TIMING_H_
