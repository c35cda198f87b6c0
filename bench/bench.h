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

// Measures `Sweep` (constructed for the largest count) at every count of the
// sweep whose counts are multiples of `multiple`, and reports the rows.
template <class Sweep>
void RunSweep(const Context& c, int multiple) {
  const std::vector<int64_t> counts = SweepCounts(c.options, multiple);
  Sweep sweep(c, counts.back());
  c.report->PrintSweepHeader();
  for (int64_t count : counts) c.report->AddSweepRow(sweep.Measure(count));
  c.report->PrintSweepSummary();
}

void RunAllreduceSweep(const Context& context);
void RunAllgatherSweep(const Context& context);
void RunBroadcastSweep(const Context& context);
void RunFusion(const Context& context);

}  // namespace bench

#endif  // BRAID_BENCH_BENCH_H_
