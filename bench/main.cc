// braid-bench: nccl-tests-style microbenchmark of braid's engine path against
// the raw MPI collective. Run as `mpirun -np N braid-bench [options]`.
//
// How each size is timed (warmup, adaptive iterations, interleaved rounds, median)
// is described in measure.h; the columns and bandwidth factors in report.h; the
// values used to check results in verify.h.
#include <mpi.h>

#include <cstdio>
#include <exception>
#include <string>

#include "bench.h"
#include "braid/braid.h"
#include "options.h"
#include "report.h"

namespace {

using bench::Options;

int Finish(int code) {
  MPI_Finalize();
  return code;
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
  }
}

bool WriteJson(const bench::Report& report, std::FILE* file, const std::string& path) {
  const std::string text = report.Json();
  const bool ok = std::fwrite(text.data(), 1, text.size(), file) == text.size();
  if (std::fclose(file) != 0 || !ok) {
    std::fprintf(stderr, "braid-bench: error: writing %s failed\n", path.c_str());
    return false;
  }
  std::printf("# wrote %s\n", path.c_str());
  return true;
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
  std::FILE* json = nullptr;
  if (!OpenJson(options, rank, &json)) return Finish(2);
  if (!InitBraid(rank)) return Finish(2);

  MPI_Comm comm;
  MPI_Comm_dup(MPI_COMM_WORLD, &comm);
  bench::Report report(options, ranks, rank == 0);
  report.PrintPreamble();
  try {
    Dispatch(bench::Context{options, comm, rank, ranks, &report});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "braid-bench: rank %d: %s\n", rank, e.what());
    MPI_Abort(MPI_COMM_WORLD, 3);
  }
  report.PrintEnd();
  braid_shutdown();
  MPI_Comm_free(&comm);

  bool ok = report.TotalWrong() == 0;
  if (json != nullptr && !WriteJson(report, json, options.json_path)) ok = false;
  int all_ok = 0, local_ok = ok;
  MPI_Allreduce(&local_ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return Finish(all_ok ? 0 : 1);
}
