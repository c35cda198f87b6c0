// The --kernels table and its JSON form (rank 0).
#include <cstdio>
#include <sstream>

#include "json.h"
#include "kernels.h"

namespace bench {
namespace {

constexpr double kKernelContract = 0.8;  // kernels at 80% or more of a plain copy

std::string ShapeText(const KernelRow& row) {
  return std::to_string(row.tensors) + "x" + std::to_string(row.tensor_bytes) + "B";
}

}  // namespace

void PrintKernelHeader(const std::string& device, const Options& o) {
  std::printf("# braid-bench --kernels: batched pack/unpack against cudaMemcpyAsync, %s\n",
              o.dtype->name);
  std::printf("#   %s\n", device.c_str());
  std::printf("#   %d calls per round, median of %d rounds after %d warmup calls;\n",
              KernelIters(o), o.rounds, o.warmup);
  std::printf("#   GB/s: bytes copied once per time; ratio: memcpy time / op time\n#\n");
  std::printf("%-16s %-12s %10s %9s %7s %7s\n", "# shape", "op", "time(us)", "GB/s", "ratio",
              "#wrong");
  std::fflush(stdout);
}

void PrintKernelRow(const KernelRow& row) {
  std::printf("%-16s %-12s %10.1f %9.1f %7.2f %7lld\n", ShapeText(row).c_str(), row.op.c_str(),
              row.time_us, row.gbps, row.ratio, static_cast<long long>(row.wrong));
  std::fflush(stdout);
}

void PrintKernelSummary(const std::vector<KernelRow>& rows) {
  int64_t wrong = 0;
  for (const KernelRow& r : rows) {
    wrong += r.wrong;
    if (r.op == "pack" || r.op == "unpack") {
      std::printf("# %s %s: ratio %.2f (target: at least %.1f: %s)\n", ShapeText(r).c_str(),
                  r.op.c_str(), r.ratio, kKernelContract,
                  r.ratio >= kKernelContract ? "meets" : "misses");
    }
  }
  std::printf("# #wrong in all: %lld (%s)\n", static_cast<long long>(wrong),
              wrong == 0 ? "OK: every kernel matches the host path" : "FAILED");
  std::fflush(stdout);
}

std::string KernelJson(const std::string& device, const Options& o,
                       const std::vector<KernelRow>& rows) {
  std::ostringstream out;
  out << "{\n  \"benchmark\": \"braid-bench\",\n  \"settings\": {\"mode\": \"kernels\", "
      << "\"device\": \"cuda\", \"device_detail\": " << JsonQuote(device)
      << ", \"dtype\": " << JsonQuote(o.dtype->name) << ", \"iters\": " << (KernelIters(o))
      << ", \"rounds\": " << o.rounds << ", \"warmup\": " << o.warmup << "},\n  \"rows\": [";
  for (size_t i = 0; i < rows.size(); ++i) {
    const KernelRow& r = rows[i];
    out << (i == 0 ? "\n    " : ",\n    ") << "{\"tensors\": " << r.tensors
        << ", \"tensor_bytes\": " << r.tensor_bytes << ", \"op\": " << JsonQuote(r.op)
        << ", \"time_us\": " << JsonNumber(r.time_us) << ", \"gbps\": " << JsonNumber(r.gbps)
        << ", \"ratio_memcpy_over_op\": " << JsonNumber(r.ratio) << ", \"wrong\": " << r.wrong
        << "}";
  }
  out << "\n  ]\n}\n";
  return out.str();
}

}  // namespace bench
