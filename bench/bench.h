// What the per-collective benchmarks share.
#ifndef BRAID_BENCH_BENCH_H_
#define BRAID_BENCH_BENCH_H_

#include <mpi.h>

#include <cstdint>
#include <vector>

#include "options.h"
#include "report.h"

namespace bench {

struct Context {
  const Options& options;
  MPI_Comm comm;  // a duplicate of MPI_COMM_WORLD: the raw path and the timing barriers
  int rank;
  int ranks;
  Report* report;
};

void RunAllreduceSweep(const Context& context);
void RunAllgatherSweep(const Context& context);
void RunBroadcastSweep(const Context& context);
void RunFusion(const Context& context);

}  // namespace bench

#endif  // BRAID_BENCH_BENCH_H_
