// braid-bench: nccl-tests-style microbenchmark of braid's engine path against
// the raw collective on the same buffers. Run as `mpirun -np N braid-bench [options]`.
//
// How each size is timed (warmup, adaptive iterations, interleaved rounds, median)
// is described in measure.h; the columns and bandwidth factors in report.h; the
// values used to check results in verify.h; host or GPU buffers and the raw path
// on them in device.h and raw_path.h; the GPU kernel mode in kernels.h.
#include <mpi.h>

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "bench.h"
#include "braid/braid.h"
#include "device.h"
#include "kernels.h"
#include "memcpy_bw.h"
#include "options.h"
#include "plot.h"
#include "report.h"

namespace {

using bench::Options;

constexpr int64_t kMemcpyBytes = int64_t{64} << 20;  // the header's memcpy bandwidth
constexpr int kMemcpyCopies = 8;

int Finish(int code) {
  MPI_Finalize();
  return code;
}

// The same exit code on every rank: the largest.
int AgreeCode(int code) {
  int all = code;
  MPI_Allreduce(&code, &all, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return all;
}

// Rank 0 opens the JSON file now, so that a bad path fails before any timing, on
// every rank.
bool OpenJson(const Options& options, int rank, std::FILE** file) {
  if (options.json_path.empty()) return true;
  int ok = 1;
  if (rank == 0) {
    *file = std::fopen(options.json_path.c_str(), "w");
    ok = *file != nullptr;
    if (!ok) std::perror(("braid-bench: error: cannot write " + options.json_path).c_str());
  }
  MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
  return ok != 0;
}

// Writes and closes `file` (rank 0's; nothing elsewhere).
bool WriteJson(const std::string& text, std::FILE* file, const std::string& path) {
  if (file == nullptr) return true;
  const bool ok = std::fwrite(text.data(), 1, text.size(), file) == text.size();
  if (std::fclose(file) != 0 || !ok) {
    std::fprintf(stderr, "braid-bench: error: writing %s failed\n", path.c_str());
    return false;
  }
  std::printf("# wrote %s\n", path.c_str());
  return true;
}

// braid_init on every rank; false on every rank when any rank failed.
bool InitBraid(int rank) {
  const int rc = braid_init();
  if (rc != BRAID_OK) {
    std::fprintf(stderr, "braid-bench: rank %d: braid_init failed (code %d): %s\n", rank, rc,
                 braid_last_error());
  }
  int ok = rc == BRAID_OK, all = 0;
  MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (!all && rc == BRAID_OK) braid_shutdown();
  return all != 0;
}

void Dispatch(const bench::Context& context) {
  if (context.options.mode == bench::Mode::kFusion) return bench::RunFusion(context);
  switch (context.options.collective) {
    case bench::Collective::kAllreduce:
      return bench::RunAllreduceSweep(context);
    case bench::Collective::kAllgather:
      return bench::RunAllgatherSweep(context);
    case bench::Collective::kBroadcast:
      return bench::RunBroadcastSweep(context);
    case bench::Collective::kSparse:
      return bench::RunSparseSweep(context);
    case bench::Collective::kNeighbor:
      return bench::RunNeighborSweep(context);
  }
}

// --kernels: rank 0 times the kernels on its GPU; the other ranks wait. 0 when
// every result matched, 1 for a wrong element or a failed write, 2 when the
// kernels could not run.
int RunKernelMode(const Options& options, const bench::DeviceSetup& setup, int rank,
                  std::FILE* json) {
  int code = 0;
  if (rank == 0) {
    bench::PrintKernelHeader(setup.info.device_detail, options);
    std::vector<bench::KernelRow> rows;
    std::string error;
    if (!bench::RunKernels(options, *setup.memory, &rows, &error)) {
      std::fprintf(stderr, "braid-bench: error: --kernels: %s\n", error.c_str());
      if (json != nullptr) std::fclose(json);
      code = 2;
    } else {
      bench::PrintKernelSummary(rows);
      for (const bench::KernelRow& r : rows) code = r.wrong != 0 ? 1 : code;
      const std::string text = bench::KernelJson(setup.info.device_detail, options, rows);
      if (!WriteJson(text, json, options.json_path)) code = 1;
    }
  }
  MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD);
  return code;
}

// The collective benchmarks on the device set up; returns the exit code.
int RunCollectives(const Options& options, const bench::DeviceSetup& setup, MPI_Comm comm, int rank,
                   int ranks, std::FILE* json) {
  // Before the engine starts its thread, so that the copy has the core to itself.
  bench::RunInfo info = setup.info;
  info.memcpy = bench::MeasureMemcpy(comm, kMemcpyBytes, kMemcpyCopies);
  if (!InitBraid(rank)) {
    if (json != nullptr) std::fclose(json);
    return 2;
  }
  bench::Report report(options, info, ranks, rank == 0);
  report.PrintPreamble();
  try {
    Dispatch(bench::Context{options, comm, rank, ranks, &report, *setup.memory, *setup.raw});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "braid-bench: rank %d: %s\n", rank, e.what());
    MPI_Abort(MPI_COMM_WORLD, 3);
  }
  report.PrintEnd();
  braid_shutdown();
  int code = report.TotalWrong() == 0 ? 0 : 1;
  if (json != nullptr && !WriteJson(report.Json(), json, options.json_path)) code = 1;
  return AgreeCode(code);
}

// --plot without -J: rank 0 writes the JSON to a temporary file (removed after
// plotting); every rank then has a json_path, so that OpenJson agrees. False, with
// no plot, when the file cannot be made.
bool UseTemporaryJson(Options* options, int rank) {
  std::string path = rank == 0 ? bench::TemporaryJsonPath() : std::string();
  int ok = rank != 0 || !path.empty();
  MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (!ok) {
    if (rank == 0) std::fprintf(stderr, "braid-bench: warning: --plot: no temporary file\n");
    options->plot_path.clear();
    return false;
  }
  options->json_path = rank == 0 ? path : "(rank 0's temporary file)";
  return true;
}

int Run(Options options, int rank, int ranks) {
  const bool temporary_json =
      !options.plot_path.empty() && options.json_path.empty() && UseTemporaryJson(&options, rank);
  std::FILE* json = nullptr;
  if (!OpenJson(options, rank, &json)) return 2;
  MPI_Comm comm;  // the raw path's and the timing barriers'
  MPI_Comm_dup(MPI_COMM_WORLD, &comm);
  int code = 2;
  {
    bench::DeviceSetup setup;  // freed (streams, NCCL communicator) before comm
    if (!bench::SetUpDevice(options, comm, &setup)) {
      if (json != nullptr) std::fclose(json);
    } else if (options.kernels) {
      code = RunKernelMode(options, setup, rank, json);
    } else {
      code = RunCollectives(options, setup, comm, rank, ranks, json);
    }
  }
  MPI_Comm_free(&comm);
  // A failed plot is a warning: the results and the JSON are complete without it.
  if (rank == 0 && !options.plot_path.empty() && code != 2) {
    bench::WritePlot(options.plot_python, options.json_path, options.plot_path);
  }
  if (rank == 0 && temporary_json) std::remove(options.json_path.c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  int provided = 0, rank = 0, ranks = 1;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);

  Options options;
  std::string error;
  if (!bench::ParseOptions(argc, argv, &options, &error) ||
      !bench::CheckForWorld(options, ranks, &error)) {
    if (rank == 0) std::fprintf(stderr, "braid-bench: error: %s (see --help)\n", error.c_str());
    return Finish(2);
  }
  if (options.help) {
    if (rank == 0) std::fputs(bench::Usage().c_str(), stdout);
    return Finish(0);
  }
  if (provided < MPI_THREAD_MULTIPLE) {
    if (rank == 0) std::fprintf(stderr, "braid-bench: error: MPI lacks MPI_THREAD_MULTIPLE\n");
    return Finish(2);
  }
  return Finish(Run(options, rank, ranks));
}
