#include "measure.h"

#include <algorithm>
#include <cmath>

#include "timing.h"

namespace bench {
namespace {

constexpr int kMinAdaptiveCalls = 5;
// Enough that a round of a microsecond call still lasts about --target-seconds /
// --rounds: with 1000, a 4 B round was 0.3 ms long and the barrier's exit skew and
// scheduler wake-ups added 15-35 % to the mean.
constexpr int kMaxAdaptiveCalls = 100000;
// Adaptive: at least this many timed calls in every round, however slow a call
// is (one slow call among two moved a round's mean at 64-256 MiB by 10-30 %).
constexpr int kMinCallsPerRound = 5;

// Runs the warmup calls and returns the per-call estimate (seconds) from the
// calls after the first, which pays for first-use costs (negotiation, page faults).
double WarmupEstimate(MPI_Comm comm, const Options& options, const Path& path) {
  if (options.warmup >= 1) path.run();
  const int timed = std::max(1, options.warmup - 1);
  return TimeCalls(comm, timed, path.run);
}

int ItersPerRound(const Options& options, double estimate) {
  if (options.iters > 0) return options.iters;
  const double wanted = options.target_seconds / std::max(estimate, 1e-9);
  const double calls =
      std::min<double>(kMaxAdaptiveCalls, std::max<double>(kMinAdaptiveCalls, std::ceil(wanted)));
  return std::max(kMinCallsPerRound, static_cast<int>(std::ceil(calls / options.rounds)));
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

std::vector<Measured> MeasurePaths(MPI_Comm comm, const Options& options,
                                   const std::vector<Path>& paths) {
  std::vector<Measured> result(paths.size());
  for (size_t p = 0; p < paths.size(); ++p) {
    result[p].iters = ItersPerRound(options, WarmupEstimate(comm, options, paths[p]));
  }
  std::vector<std::vector<double>> rounds(paths.size());
  for (int r = 0; r < options.rounds; ++r) {
    for (size_t p = 0; p < paths.size(); ++p) {
      // One untimed call right before the round, so that what the other path left
      // behind (caches, the MPI library's state) is not charged to this one.
      paths[p].run();
      rounds[p].push_back(TimeCalls(comm, result[p].iters, paths[p].run));
    }
  }
  for (size_t p = 0; p < paths.size(); ++p) result[p].seconds = Median(rounds[p]);
  return result;
}

}  // namespace bench
