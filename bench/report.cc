#include "report.h"

#include <cstdio>
#include <thread>

namespace bench {
namespace {

constexpr double kLatencyContractUs = 50;    // engine latency <= raw + 50 us
constexpr double kBandwidthContract = 0.95;  // large tensors: engine busbw >= 95% of raw
constexpr double kFusionContract = 1.2;      // fused: <= 1.2x one raw allreduce
constexpr int64_t kSmallTensorBytes = 1024;  // where the latency contract is judged
constexpr int64_t kLargeTensorBytes = int64_t{16} << 20;  // and the bandwidth contract

// nccl-tests' time format: fewer decimals as the number grows.
std::string TimeText(double us) {
  char text[32];
  const char* format = us >= 10000 ? "%7.0f" : us >= 100 ? "%7.1f" : "%7.2f";
  std::snprintf(text, sizeof(text), format, us);
  return text;
}

std::string PathColumns(const PathStats& s) {
  char text[96];
  std::snprintf(text, sizeof(text), "  %7s  %6.2f  %6.2f  %5lld", TimeText(s.time_us).c_str(),
                s.algbw, s.busbw, static_cast<long long>(s.wrong));
  return text;
}

// The 1-minute load average of this host ("?" where unavailable): on a shared
// machine it tells how much the numbers may be disturbed.
std::string LoadAverage() {
  std::FILE* f = std::fopen("/proc/loadavg", "r");
  double load = 0;
  const bool ok = f != nullptr && std::fscanf(f, "%lf", &load) == 1;
  if (f != nullptr) std::fclose(f);
  char text[32];
  std::snprintf(text, sizeof(text), "%.2f", load);
  return ok ? text : "?";
}

const char* Verdict(bool meets) {
  return meets ? "meets" : "misses";
}

const char* EngineName(Collective c) {
  switch (c) {
    case Collective::kAllgather:
      return "braid_allgather_async (braid-owned output)";
    case Collective::kBroadcast:
      return "braid_broadcast_async (in place)";
    case Collective::kNeighbor:
      return "braid_neighbor_allreduce_async (out of place)";
    default:
      return "braid_allreduce_async (in place)";
  }
}

// The design's allreduce contracts, judged where they apply: latency on a small
// tensor, bandwidth on a large one.
void PrintAllreduceContracts(const Row& small, const Row& large) {
  const double diff = small.engine.time_us - small.raw.time_us;
  std::printf("# latency %lld B: engine %.2f us, raw %.2f us, difference %.2f us",
              static_cast<long long>(small.bytes), small.engine.time_us, small.raw.time_us, diff);
  if (small.bytes <= kSmallTensorBytes) {
    std::printf(" (contract: at most %.0f us: %s)", kLatencyContractUs,
                Verdict(diff <= kLatencyContractUs));
  }
  std::printf("\n# largest size %lld B: busbw ratio engine/raw %.3f",
              static_cast<long long>(large.bytes), large.ratio);
  if (large.bytes >= kLargeTensorBytes) {
    std::printf(" (contract: at least %.2f: %s)", kBandwidthContract,
                Verdict(large.ratio >= kBandwidthContract));
  }
  std::printf("\n");
}

}  // namespace

double BusFactor(Collective collective, int ranks) {
  if (ranks <= 1) return 1.0;  // see the file comment of report.h
  switch (collective) {
    case Collective::kAllreduce:
      return 2.0 * (ranks - 1) / ranks;
    case Collective::kAllgather:
      return static_cast<double>(ranks - 1) / ranks;
    case Collective::kBroadcast:
    case Collective::kSparse:
    case Collective::kNeighbor:  // depends on the graph: see report.h
      return 1.0;
  }
  return 1.0;
}

PathStats MakeStats(int64_t bytes, const Measured& measured, double bus_factor, int64_t wrong) {
  PathStats s;
  s.time_us = measured.seconds * 1e6;
  s.algbw = measured.seconds > 0 ? static_cast<double>(bytes) / measured.seconds / 1e9 : 0;
  s.busbw = s.algbw * bus_factor;
  s.wrong = wrong;
  s.iters = measured.iters;
  return s;
}

void SetSweepStats(Row* row, const std::vector<Measured>& m, double bus_factor, int64_t raw_wrong,
                   int64_t engine_wrong) {
  row->raw = MakeStats(row->bytes, m[0], bus_factor, raw_wrong);
  row->engine = MakeStats(row->bytes, m[1], bus_factor, engine_wrong);
  row->ratio = Ratio(row->engine, row->raw);
  if (m.size() > 2) {
    row->has_raw_host = true;
    row->raw_host = MakeStats(row->bytes, m[2], bus_factor, 0);
  }
}

double Ratio(const PathStats& engine, const PathStats& raw) {
  return raw.busbw > 0 ? engine.busbw / raw.busbw : 0;
}

Report::Report(const Options& options, const RunInfo& info, int ranks, bool printer)
    : options_(options), info_(info), ranks_(ranks), printer_(printer) {}

void Report::PrintPreamble() const {
  if (!printer_) return;
  const Options& o = options_;
  const bool fusion = o.mode == Mode::kFusion;
  std::printf("# braid-bench: %s %s, %d ranks, %s", CollectiveName(o.collective),
              fusion ? "fusion" : "sweep", ranks_, o.dtype->name);
  if (o.collective == Collective::kAllreduce) std::printf(" %s", OpName(o.op));
  if (o.collective == Collective::kBroadcast) std::printf(", root %d", o.root);
  std::printf("\n#   warmup %d; ", o.warmup);
  if (o.iters > 0) {
    std::printf("%d timed calls per round", o.iters);
  } else {
    std::printf("adaptive calls (about %.2g s per size and path, 5..100000 calls, >= 5 per round)",
                o.target_seconds);
  }
  std::printf("; %d interleaved rounds (raw first), each after one untimed call; median\n",
              o.rounds);
  if (o.collective == Collective::kNeighbor) {
    std::printf("#   time = largest over ranks of the mean per call; busbw = sent/rank / time\n");
  } else {
    std::printf("#   time = largest over ranks of the mean per call; busbw factor %.3g\n",
                BusFactor(o.collective, ranks_));
  }
  std::printf("#   %u hardware threads on rank 0's host, load average %s at start\n",
              std::thread::hardware_concurrency(), LoadAverage().c_str());
  const MemcpyBandwidth& m = info_.memcpy;
  std::printf(
      "#   memcpy %.0f MiB -> another buffer, rank 0, one core, best of %d: %.2f GB/s "
      "(bytes copied once / time; memory traffic is twice that)\n",
      static_cast<double>(m.bytes) / (1 << 20), m.copies, m.gbps);
  if (o.collective == Collective::kNeighbor) {
    PrintNeighborPreamble();
  } else if (info_.device != "cpu") {
    std::printf("#   device %s: %s\n", info_.device.c_str(), info_.device_detail.c_str());
    std::printf("#   raw path %s: %s\n", info_.raw_kind.c_str(), info_.raw_reason.c_str());
    std::printf("#   engine: %s + braid_wait + cudaStreamSynchronize\n",
                fusion ? "braid_allreduce_async" : EngineName(o.collective));
    std::printf("#   raw: %s, same buffers\n", info_.raw_detail.c_str());
  } else if (!fusion) {
    std::printf("#   engine: %s + braid_wait; raw: %s, same buffer\n", EngineName(o.collective),
                info_.raw_detail.c_str());
  }
  std::printf("#\n");
}

void Report::PrintSweepHeader() const {
  if (!printer_) return;
  const bool host = info_.raw_kind == "staged";
  if (host) {
    std::printf("#%53s%-32s%-42s%s\n", "", "engine", "raw", "host MPI alone");
  } else {
    std::printf("#%53s%-32s%s\n", "", "engine", "raw");
  }
  std::printf(
      "#       size         count      type   redop    root     time   algbw   busbw"
      " #wrong     time   algbw   busbw #wrong   ratio%s\n",
      host ? "     time   busbw   ratio" : "");
  std::printf(
      "#        (B)    (elements)                               (us)  (GB/s)  (GB/s)"
      "            (us)  (GB/s)  (GB/s)         engine/raw%s\n",
      host ? " (us)  (GB/s)  engine/host" : "");
  std::fflush(stdout);
}

void Report::AddSweepRow(const Row& row) {
  rows_.push_back(row);
  if (!printer_) return;
  std::printf("%12lld  %12lld  %8s  %6s  %6d%s%s  %6.2f", static_cast<long long>(row.bytes),
              static_cast<long long>(row.count), row.dtype.c_str(), row.op.c_str(), row.root,
              PathColumns(row.engine).c_str(), PathColumns(row.raw).c_str(), row.ratio);
  if (row.has_raw_host) {
    std::printf("  %7s  %6.2f  %6.2f", TimeText(row.raw_host.time_us).c_str(), row.raw_host.busbw,
                Ratio(row.engine, row.raw_host));
  }
  std::printf("\n");
  std::fflush(stdout);
}

void Report::PrintSweepSummary() const {
  if (!printer_ || rows_.empty()) return;
  int64_t engine_wrong = 0, raw_wrong = 0;
  double engine_bus = 0, raw_bus = 0;
  for (const Row& r : rows_) {
    engine_wrong += r.engine.wrong;
    raw_wrong += r.raw.wrong;
    engine_bus += r.engine.busbw;
    raw_bus += r.raw.busbw;
  }
  const double n = static_cast<double>(rows_.size());
  std::printf("# #wrong in all: engine %lld, raw %lld (%s)\n", static_cast<long long>(engine_wrong),
              static_cast<long long>(raw_wrong), engine_wrong + raw_wrong == 0 ? "OK" : "FAILED");
  std::printf("# Avg bus bandwidth (GB/s): engine %.3f, raw %.3f\n", engine_bus / n, raw_bus / n);
  if (options_.collective == Collective::kAllreduce) {
    PrintAllreduceContracts(rows_.front(), rows_.back());
  } else {
    std::printf("# largest size %lld B: busbw ratio engine/raw %.3f\n",
                static_cast<long long>(rows_.back().bytes), rows_.back().ratio);
  }
  if (rows_.back().has_raw_host) {
    std::printf("# largest size: busbw ratio engine / host MPI alone (no copies) %.3f\n",
                Ratio(rows_.back().engine, rows_.back().raw_host));
  }
  std::fflush(stdout);
}

void Report::AddFusionRow(const Row& row) {
  rows_.push_back(row);
  if (!printer_) return;
  std::printf("# %d tensors of %lld B (%lld B in all), %s %s\n", row.tensors,
              static_cast<long long>(row.tensor_bytes), static_cast<long long>(row.bytes),
              row.dtype.c_str(), row.op.c_str());
  std::printf("#%-45s     time   algbw   busbw #wrong  calls/round\n", "");
  std::printf("#%-45s     (us)  (GB/s)  (GB/s)\n", "");
  const bool mpi = info_.raw_kind == "mpi";
  const char* raw_call = mpi                        ? "MPI_Allreduce"
                         : info_.raw_kind == "nccl" ? "ncclAllReduce"
                                                    : "staged allreduce";
  char label[4][64];
  std::snprintf(label[0], 64, "engine: %d async allreduces, then wait all", row.tensors);
  std::snprintf(label[1], 64, "raw: %d separate %s", row.tensors, raw_call);
  std::snprintf(label[2], 64, "raw: one %s of %lld B", raw_call, static_cast<long long>(row.bytes));
  std::snprintf(label[3], 64, "raw: that MPI_Allreduce alone (host)");
  const PathStats* stats[4] = {&row.engine, &row.raw_separate, &row.raw, &row.raw_host};
  for (int i = 0; i < (row.has_raw_host ? 4 : 3); ++i) {
    std::printf("  %-44s%s  %11d\n", label[i], PathColumns(*stats[i]).c_str(), stats[i]->iters);
  }
  const double vs_one = row.engine.time_us / row.raw.time_us;
  const double vs_separate = row.engine.time_us / row.raw_separate.time_us;
  std::printf("# time engine / one raw allreduce: %.3f (contract: at most %.1f: %s)\n", vs_one,
              kFusionContract, Verdict(vs_one <= kFusionContract));
  std::printf("# time engine / %d separate raw allreduces: %.3f\n", row.tensors, vs_separate);
  if (row.has_raw_host) {
    std::printf("# time engine / that MPI_Allreduce alone on the host: %.3f\n",
                row.engine.time_us / row.raw_host.time_us);
  }
  const int64_t wrong = row.engine.wrong + row.raw.wrong + row.raw_separate.wrong;
  std::printf("# #wrong in all: %lld (%s)\n", static_cast<long long>(wrong),
              wrong == 0 ? "OK" : "FAILED");
  std::fflush(stdout);
}

void Report::PrintEnd() const {
  if (printer_) std::printf("# load average %s at end\n", LoadAverage().c_str());
}

int64_t Report::TotalWrong() const {
  int64_t wrong = extra_wrong_;
  for (const Row& r : rows_)
    wrong += r.engine.wrong + r.raw.wrong + r.raw_separate.wrong + r.allreduce.wrong;
  return wrong;
}

void Report::PrintNeighborPreamble() const {
  if (info_.device != "cpu")
    std::printf("#   device %s: %s\n", info_.device.c_str(), info_.device_detail.c_str());
  std::printf(
      "#   neighbour: %s + braid_wait, this rank's row of W_t, t advancing every call\n"
      "#   raw: %s\n"
      "#   allreduce: braid_allreduce_async (average, in place) + braid_wait, same bytes\n",
      EngineName(Collective::kNeighbor), info_.raw_detail.c_str());
}

void Report::PrintNeighborHeader(const std::string& graph) const {
  if (!printer_) return;
  std::printf("# graph %s\n#\n", graph.c_str());
  std::printf("#%35s%-32s%-32s%-32s%s\n", "", "  neighbour, engine", "  neighbour, raw",
              "  allreduce avg, engine", "   sent/rank/call (B)    time ratio");
  std::printf(
      "#       size         count      type     time   algbw   busbw #wrong     time   algbw"
      "   busbw #wrong     time   algbw   busbw #wrong   neighbour   allreduce  nbr/ar"
      " eng/raw\n");
  std::printf(
      "#        (B)    (elements)               (us)  (GB/s)  (GB/s)            (us)  (GB/s)"
      "  (GB/s)            (us)  (GB/s)  (GB/s)\n");
  std::fflush(stdout);
}

void Report::AddNeighborRow(const Row& row) {
  rows_.push_back(row);
  if (!printer_) return;
  char raw[64], ratio[16];
  std::snprintf(raw, sizeof(raw), "  %7s  %6s  %6s  %5s", "n/a", "n/a", "n/a", "n/a");
  std::snprintf(ratio, sizeof(ratio), "%7s", "n/a");
  if (row.has_raw) {
    std::snprintf(raw, sizeof(raw), "%s", PathColumns(row.raw).c_str());
    std::snprintf(ratio, sizeof(ratio), "%7.3f", row.engine.time_us / row.raw.time_us);
  }
  std::printf("%12lld  %12lld  %8s%s%s%s  %10.0f  %10.0f  %6.3f %s\n",
              static_cast<long long>(row.bytes), static_cast<long long>(row.count),
              row.dtype.c_str(), PathColumns(row.engine).c_str(), raw,
              PathColumns(row.allreduce).c_str(), row.neighbor_sent, row.allreduce_sent,
              row.engine.time_us / row.allreduce.time_us, ratio);
  std::fflush(stdout);
}

void Report::PrintNeighborSummary() const {
  if (!printer_ || rows_.empty()) return;
  int64_t engine = 0, raw = 0, allreduce = 0;
  for (const Row& r : rows_) {
    engine += r.engine.wrong;
    raw += r.raw.wrong;
    allreduce += r.allreduce.wrong;
  }
  std::printf("# #wrong in all: neighbour engine %lld, raw %lld, allreduce %lld (%s)\n",
              static_cast<long long>(engine), static_cast<long long>(raw),
              static_cast<long long>(allreduce), engine + raw + allreduce == 0 ? "OK" : "FAILED");
  const Row& large = rows_.back();
  std::printf("# largest size %lld B: time neighbour / allreduce %.3f",
              static_cast<long long>(large.bytes), large.engine.time_us / large.allreduce.time_us);
  if (large.has_raw)
    std::printf(", neighbour engine / raw %.3f", large.engine.time_us / large.raw.time_us);
  if (large.allreduce_sent > 0)
    std::printf(", bytes sent neighbour / allreduce %.3f",
                large.neighbor_sent / large.allreduce_sent);
  std::printf("\n");
  std::fflush(stdout);
}

}  // namespace bench
