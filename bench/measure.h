// Fair comparison of several ways of doing the same collective on a noisy host.
//
// Method, per size:
//   1. warmup: each path runs --warmup calls in turn; the calls after the first
//      give a per-call estimate (largest over ranks, so every rank agrees);
//   2. iterations: --iters per round, or adaptive: about --target-seconds of timed
//      calls per path in total, clamped to 5..100000 calls, split evenly over the
//      rounds (rounded up), and at least 5 per round;
//   3. rounds: the paths are timed in turn, raw first, then the engine, and again,
//      --rounds times (default 3: raw, engine, raw, engine, raw, engine). Each round
//      starts with one untimed call of its path, then an MPI_Barrier and the timed
//      loop, whose value is the largest over ranks of the mean time per call;
//   4. result: the median of each path's rounds. Both paths get the same treatment,
//      so a burst of noise on the shared cores penalises neither systematically.
#ifndef BRAID_BENCH_MEASURE_H_
#define BRAID_BENCH_MEASURE_H_

#include <mpi.h>

#include <functional>
#include <vector>

#include "options.h"

namespace bench {

struct Path {
  const char* name;
  std::function<void()> run;  // one complete operation (submit and wait)
};

struct Measured {
  double seconds = 0;  // per call: median over rounds
  int iters = 0;       // timed calls per round
};

std::vector<Measured> MeasurePaths(MPI_Comm comm, const Options& options,
                                   const std::vector<Path>& paths);

}  // namespace bench

#endif  // BRAID_BENCH_MEASURE_H_
