// The result table (nccl-tests columns for the engine and the raw path side by
// side) and its JSON form. Every rank builds the same rows (times and #wrong are
// already reduced over ranks); only rank 0 prints and writes.
//
// algbw = bytes / time. busbw = algbw * factor, the nccl-tests factors:
// allreduce 2(n-1)/n, allgather (n-1)/n with bytes = the total output, broadcast
// 1. With one rank the first two factors are 0 (nothing crosses a bus); busbw is
// then reported equal to algbw so that the ratio column stays meaningful. For the
// neighbour allreduce (-c neighbor), busbw is the bytes a rank sends per call over
// the time: what the allreduce factor gives too, as a ring allreduce sends
// 2(n-1)/n * bytes per rank.
#ifndef BRAID_BENCH_REPORT_H_
#define BRAID_BENCH_REPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "measure.h"
#include "memcpy_bw.h"
#include "options.h"

namespace bench {

struct PathStats {
  double time_us = 0;
  double algbw = 0;  // GB/s (1e9 bytes per second)
  double busbw = 0;  // GB/s
  int64_t wrong = 0;
  int iters = 0;  // timed calls per round
};

struct Row {
  std::string mode;  // "sweep" or "fusion"
  std::string collective;
  int64_t bytes = 0;  // per rank (allreduce, broadcast) or total output (allgather)
  int64_t count = 0;  // elements in `bytes`
  std::string dtype;
  std::string op;  // "none" for allgather and broadcast
  int root = -1;   // broadcast only
  PathStats engine;
  PathStats raw;     // the single raw collective on the same bytes
  double ratio = 0;  // engine busbw / raw busbw
  // fusion only: the tensors and the raw path with one call per tensor.
  int tensors = 0;
  int64_t tensor_bytes = 0;
  PathStats raw_separate;
  // staged raw path only: its host MPI collective alone, without the copies.
  bool has_raw_host = false;
  PathStats raw_host;
  // neighbor only (-c neighbor): engine and raw are the neighbour allreduce, and
  // `allreduce` the engine's averaging allreduce of the same tensor; the bytes each
  // rank sends per call on each (busbw = those bytes / time); no raw path on device
  // buffers (has_raw false).
  std::string graph;
  PathStats allreduce;
  double neighbor_sent = 0;   // mean over ranks and over the graph's period
  double allreduce_sent = 0;  // ring allreduce: 2(n-1)/n * bytes
  bool has_raw = true;
};

// Where the buffers live and what the raw path is, for the header and the JSON.
struct RunInfo {
  std::string device = "cpu";    // --device
  std::string device_detail;     // cuda: rank 0's GPU and how ranks share GPUs
  std::string raw_kind = "mpi";  // RawPath::kind()
  std::string raw_reason;        // why that kind (device memory only)
  std::string raw_detail;        // what one raw call of --collective does
  MemcpyBandwidth memcpy;        // rank 0's single-core memcpy, measured in this run
};

double BusFactor(Collective collective, int ranks);
PathStats MakeStats(int64_t bytes, const Measured& measured, double bus_factor, int64_t wrong);
double Ratio(const PathStats& engine, const PathStats& raw);
// A sweep row's raw (m[0]) and engine (m[1]) columns and their ratio, over row->bytes,
// and the raw host collective alone (m[2]) when measured.
void SetSweepStats(Row* row, const std::vector<Measured>& m, double bus_factor, int64_t raw_wrong,
                   int64_t engine_wrong);

class Report {
 public:
  Report(const Options& options, const RunInfo& info, int ranks, bool printer);

  void PrintPreamble() const;
  void PrintSweepHeader() const;
  void AddSweepRow(const Row& row);  // stores and prints
  void PrintSweepSummary() const;
  void AddFusionRow(const Row& row);  // stores and prints
  // -c neighbor (report_neighbor.cc): `graph` describes the graph for the header.
  void PrintNeighborHeader(const std::string& graph) const;
  void AddNeighborRow(const Row& row);  // stores and prints
  void PrintNeighborSummary() const;
  void PrintEnd() const;

  int64_t TotalWrong() const;
  // Wrong elements found by a mode with rows of its own (-c sparse).
  void AddWrong(int64_t wrong) { extra_wrong_ += wrong; }
  const std::vector<Row>& rows() const { return rows_; }
  // JSON of the settings and every row (report_json.cc).
  std::string Json() const;

 private:
  void PrintNeighborPreamble() const;

  const Options& options_;
  RunInfo info_;
  int ranks_;
  bool printer_;
  std::vector<Row> rows_;
  int64_t extra_wrong_ = 0;
};

}  // namespace bench

#endif  // BRAID_BENCH_REPORT_H_
