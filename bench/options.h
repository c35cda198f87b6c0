// Command-line options of braid-bench.
#ifndef BRAID_BENCH_OPTIONS_H_
#define BRAID_BENCH_OPTIONS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "dtype.h"

namespace bench {

enum class Mode { kSweep, kFusion };
enum class Collective { kAllreduce, kAllgather, kBroadcast, kSparse, kNeighbor };
enum class Device { kCpu, kCuda };

struct Options {
  Mode mode = Mode::kSweep;
  Collective collective = Collective::kAllreduce;
  int64_t min_bytes = 4;
  int64_t max_bytes = int64_t{256} << 20;
  int64_t step_factor = 2;
  const DType* dtype = FindDType("float32");
  int op = BRAID_SUM;
  int root = 0;
  int warmup = 5;
  int iters = 0;  // timed iterations per round; 0: adaptive
  int rounds = 3;
  double target_seconds = 0.3;  // adaptive: timed seconds per size per path
  int fusion_count = 200;
  int64_t fusion_bytes = int64_t{64} << 10;
  Device device = Device::kCpu;
  bool kernels = false;      // --kernels: the GPU pack/unpack kernels instead (kernels.h)
  int64_t kernel_count = 0;  // --count: tensors of the one batch shape; 0: default shapes
  int64_t kernel_bytes = 0;  // --bytes: bytes per tensor of that shape
  // -c sparse: the fractions of the dense length each rank sends as pairs.
  std::vector<double> densities = {0.1, 0.01, 0.001, 0.0001};
  // -c neighbor: the gossip graph (ops/gossip/graph.h), one of NeighborGraphNames().
  std::string graph = "ring";
  // -c neighbor --one-name: one tensor name for every W_t of a time-varying graph,
  // instead of one per phase t mod period.
  bool one_name = false;
  bool stages = false;  // --stages: the engine's per-stage times (allreduce sweep)
  std::string json_path;
  std::string plot_path;                // --plot: PNG of busbw against size (plot.h)
  std::string plot_python = "python3";  // --plot-python: the interpreter for it
  bool help = false;
};

// Parses argv[1..]. Returns false with a one-line message in *error on a bad
// option; the result depends on argv only, so every rank agrees.
bool ParseOptions(int argc, char** argv, Options* options, std::string* error);

// Checks what needs the number of ranks: the broadcast root, and that the sweep
// has at least one size.

bool CheckForWorld(const Options& options, int world_size, std::string* error);

// Elements per rank for each size from --min-bytes to --max-bytes (multiplied by
// --step-factor): bytes / element size / `per_rank_divisor` (the number of ranks
// for allgather, whose sizes are the total output). Sizes holding no element are
// skipped, and repeats dropped.
std::vector<int64_t> SweepCounts(const Options& options, int64_t per_rank_divisor);

std::string Usage();

const char* CollectiveName(Collective c);
const char* OpName(int op);
const char* DeviceName(Device d);
// The graphs -c neighbor takes, for messages: "ring, torus, ...".
const char* NeighborGraphNames();

}  // namespace bench

#endif  // BRAID_BENCH_OPTIONS_H_
