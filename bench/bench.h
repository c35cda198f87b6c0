// What the per-collective benchmarks share.
#ifndef BRAID_BENCH_BENCH_H_
#define BRAID_BENCH_BENCH_H_

#include <mpi.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "engine_ops.h"
#include "measure.h"
#include "memory.h"
#include "options.h"
#include "raw_path.h"
#include "report.h"

namespace bench {

struct Context {
  const Options& options;
  MPI_Comm comm;  // a duplicate of MPI_COMM_WORLD: the raw path and the timing barriers
  int rank;
  int ranks;
  Report* report;
  Memory& memory;  // where the buffers live (--device)
  RawPath& raw;    // the raw path on those buffers
};

// braid_tensor_t.device and .stream for the context's memory.
inline Placement Where(const Context& c) {
  return {c.memory.device(), c.memory.stream()};
}

// Times a row's paths (measure.h), in this order: raw, engine, and when the raw path
// has one, its host collective alone. `raw` runs one operation on the path given;
// `engine` runs one engine operation, after which the stream is synchronised.
inline std::vector<Measured> MeasureSweep(const Context& c,
                                          const std::function<void(RawPath&)>& raw,
                                          const std::function<void()>& engine) {
  std::vector<Path> paths = {
      {"raw", [&] { raw(c.raw); }},
      {"engine",
       [&] {
         engine();
         c.memory.Synchronize();
       }},
  };
  if (RawPath* host = c.raw.host_only())
    paths.push_back({"raw host only", [&, host] { raw(*host); }});
  return MeasurePaths(c.comm, c.options, paths);
}

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
void RunSparseSweep(const Context& context);
void RunNeighborSweep(const Context& context);

}  // namespace bench

#endif  // BRAID_BENCH_BENCH_H_
