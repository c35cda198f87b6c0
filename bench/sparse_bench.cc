// Sparse allreduce against a dense allreduce of the same dense length, both
// through the engine in the same run: for each dense length of the sweep and each
// --densities fraction, every rank sends k = density * length (int32 index, value)
// pairs, spread evenly over the dense tensor and shifted by rank so that ranks
// overlap in part. The sparse path runs without the dense fallback (what the
// pairs themselves cost); its result is checked against the sum computed here
// from every rank's pairs. One row per (length, density):
//   bytes       the dense tensor (what the dense allreduce moves per rank)
//   pairs/rank  k;  sent/rank  k * (4 + value size) bytes
//   sparse_us, dense_us: median time per call (measure.h); speedup dense/sparse
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "bench.h"
#include "buffer.h"
#include "verify.h"

namespace bench {
namespace {

int64_t PairsFor(int64_t length, double density) {
  return std::max<int64_t>(1, std::llround(density * static_cast<double>(length)));
}

// Rank r's pair i: distinct indices within a rank (i * stride < length).
int64_t IndexOf(int rank, int64_t i, int64_t length, int64_t pairs) {
  const int64_t stride = length / pairs;
  return (i * stride + static_cast<int64_t>(rank) * (stride / 2 + 1)) % length;
}

class SparseSweep {
 public:
  SparseSweep(const Context& c, int64_t max_length, double max_density)
      : c_(c),
        dtype_(*c.options.dtype),
        max_pairs_(PairsFor(max_length, max_density)),
        indices_(c.memory, static_cast<size_t>(max_pairs_) * 4),
        values_(c.memory, static_cast<size_t>(max_pairs_) * dtype_.size),
        sparse_out_(c.memory, static_cast<size_t>(max_length) * dtype_.size),
        dense_(c.memory, static_cast<size_t>(max_length) * dtype_.size) {}

  void Measure(int64_t length, double density);

 private:
  int64_t CheckSparse(const std::string& name, int64_t length, int64_t pairs);

  const Context& c_;
  const DType& dtype_;
  int64_t max_pairs_;
  Buffer indices_;
  Buffer values_;
  Buffer sparse_out_;
  Buffer dense_;
};

// Runs one sparse allreduce and counts the wrong elements on every rank.
int64_t SparseSweep::CheckSparse(const std::string& name, int64_t length, int64_t pairs) {
  std::vector<double> expected(static_cast<size_t>(length), 0.0);
  for (int r = 0; r < c_.ranks; ++r) {
    for (int64_t i = 0; i < pairs; ++i)
      expected[static_cast<size_t>(IndexOf(r, i, length, pairs))] += SenderValue(r, i);
  }
  if (c_.options.op == BRAID_AVERAGE) {
    for (double& e : expected) e /= c_.ranks;
  }
  EngineSparseAllreduce(name, indices_.data(), values_.data(), pairs, sparse_out_.data(), length,
                        dtype_.braid, c_.options.op, 0, Where(c_));
  c_.memory.Synchronize();
  return SumOverRanks(c_.comm, CountWrong(c_.memory, dtype_, sparse_out_.data(), length,
                                          [&](int64_t j) { return expected[j]; }));
}

void SparseSweep::Measure(int64_t length, double density) {
  const int64_t pairs = PairsFor(length, density);
  Fill(c_.memory, BRAID_INT32, indices_.data(), pairs,
       [&](int64_t i) { return static_cast<double>(IndexOf(c_.rank, i, length, pairs)); });
  Fill(c_.memory, dtype_.braid, values_.data(), pairs,
       [&](int64_t i) { return SenderValue(c_.rank, i); });
  Fill(c_.memory, dtype_.braid, dense_.data(), length, [](int64_t) { return 0.0; });
  const std::string tag = std::to_string(length) + "." + std::to_string(pairs);
  const int64_t wrong = CheckSparse("bench.sparse.check." + tag, length, pairs);
  c_.report->AddWrong(wrong);
  const Placement where = Where(c_);
  const std::string sparse_name = "bench.sparse." + tag, dense_name = "bench.dense." + tag;
  const std::vector<Measured> m = MeasurePaths(
      c_.comm, c_.options,
      {{"sparse",
        [&] {
          EngineSparseAllreduce(sparse_name, indices_.data(), values_.data(), pairs,
                                sparse_out_.data(), length, dtype_.braid, c_.options.op, 0, where);
          c_.memory.Synchronize();
        }},
       {"dense", [&] {
          EngineAllreduce(dense_name, dense_.data(), length, dtype_.braid, c_.options.op, where);
          c_.memory.Synchronize();
        }}});
  if (c_.rank != 0) return;
  const int64_t bytes = length * static_cast<int64_t>(dtype_.size);
  const int64_t sent = pairs * (4 + static_cast<int64_t>(dtype_.size));
  std::printf("%12lld %9.4f%% %12lld %12lld %12.1f %12.1f %8.2f %7lld\n",
              static_cast<long long>(bytes), 100.0 * density, static_cast<long long>(pairs),
              static_cast<long long>(sent), m[0].seconds * 1e6, m[1].seconds * 1e6,
              m[1].seconds / m[0].seconds, static_cast<long long>(wrong));
  std::fflush(stdout);
}

}  // namespace

void RunSparseSweep(const Context& c) {
  const std::vector<int64_t> lengths = SweepCounts(c.options, 1);
  const double max_density =
      *std::max_element(c.options.densities.begin(), c.options.densities.end());
  SparseSweep sweep(c, lengths.back(), max_density);
  if (c.rank == 0) {
    std::printf(
        "# sparse_allreduce (%s, op %s, int32 indices, no dense fallback) against a dense\n"
        "# allreduce of the same dense tensor, both through the engine, %d ranks\n",
        c.options.dtype->name, OpName(c.options.op), c.ranks);
    std::printf("# %10s %10s %12s %12s %12s %12s %8s %7s\n", "bytes", "density", "pairs/rank",
                "sent/rank", "sparse_us", "dense_us", "speedup", "#wrong");
  }
  for (int64_t length : lengths)
    for (double density : c.options.densities) sweep.Measure(length, density);
}

}  // namespace bench
