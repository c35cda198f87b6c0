// JSON form of a Report: {"benchmark", "ranks", "settings", "rows": [...]}.
#include <sstream>

#include "json.h"
#include "report.h"

namespace bench {
namespace {

std::string Stats(const PathStats& s) {
  std::ostringstream out;
  out << "{\"time_us\": " << JsonNumber(s.time_us) << ", \"algbw_gbps\": " << JsonNumber(s.algbw)
      << ", \"busbw_gbps\": " << JsonNumber(s.busbw) << ", \"wrong\": " << s.wrong
      << ", \"iters_per_round\": " << s.iters << "}";
  return out.str();
}

std::string RowJson(const Row& r) {
  std::ostringstream out;
  out << "{\"mode\": " << JsonQuote(r.mode) << ", \"collective\": " << JsonQuote(r.collective)
      << ", \"bytes\": " << r.bytes << ", \"count\": " << r.count
      << ", \"dtype\": " << JsonQuote(r.dtype) << ", \"op\": " << JsonQuote(r.op)
      << ", \"root\": " << r.root << ",\n     \"engine\": " << Stats(r.engine)
      << ",\n     \"raw\": " << (r.has_raw ? Stats(r.raw) : "null")
      << ",\n     \"ratio\": " << JsonNumber(r.ratio);
  if (r.has_raw_host) {
    out << ",\n     \"raw_host_only\": " << Stats(r.raw_host)
        << ", \"ratio_engine_over_raw_host_only\": " << JsonNumber(Ratio(r.engine, r.raw_host));
  }
  if (r.mode == "fusion") {
    out << ", \"tensors\": " << r.tensors << ", \"tensor_bytes\": " << r.tensor_bytes
        << ",\n     \"raw_separate\": " << Stats(r.raw_separate)
        << ",\n     \"time_ratio_engine_over_raw\": "
        << JsonNumber(r.engine.time_us / r.raw.time_us)
        << ", \"time_ratio_engine_over_raw_separate\": "
        << JsonNumber(r.engine.time_us / r.raw_separate.time_us);
  }
  if (r.mode == "neighbor") {
    out << ", \"graph\": " << JsonQuote(r.graph) << ",\n     \"allreduce\": " << Stats(r.allreduce)
        << ",\n     \"neighbor_sent_bytes_per_rank\": " << JsonNumber(r.neighbor_sent)
        << ", \"allreduce_sent_bytes_per_rank\": " << JsonNumber(r.allreduce_sent)
        << ", \"time_ratio_neighbor_over_allreduce\": "
        << JsonNumber(r.engine.time_us / r.allreduce.time_us);
  }
  out << "}";
  return out.str();
}

}  // namespace

std::string Report::Json() const {
  const Options& o = options_;
  std::ostringstream out;
  out << "{\n  \"benchmark\": \"braid-bench\",\n  \"ranks\": " << ranks_
      << ",\n  \"settings\": {\"mode\": " << JsonQuote(o.mode == Mode::kFusion ? "fusion" : "sweep")
      << ", \"collective\": " << JsonQuote(CollectiveName(o.collective))
      << ", \"dtype\": " << JsonQuote(o.dtype->name)
      << ", \"op\": " << JsonQuote(o.collective == Collective::kNeighbor ? "avg" : OpName(o.op))
      << ", \"root\": " << o.root << ", \"min_bytes\": " << o.min_bytes
      << ", \"max_bytes\": " << o.max_bytes << ", \"step_factor\": " << o.step_factor
      << ", \"warmup\": " << o.warmup
      << ", \"iters\": " << (o.iters > 0 ? std::to_string(o.iters) : "\"adaptive\"")
      << ", \"rounds\": " << o.rounds << ", \"target_seconds\": " << JsonNumber(o.target_seconds)
      << ", \"fusion_count\": " << o.fusion_count << ", \"fusion_bytes\": " << o.fusion_bytes
      << (o.collective == Collective::kNeighbor ? ", \"graph\": " + JsonQuote(o.graph) : "")
      << ", \"bus_factor\": " << JsonNumber(BusFactor(o.collective, ranks_))
      << ",\n    \"device\": " << JsonQuote(info_.device)
      << ", \"device_detail\": " << JsonQuote(info_.device_detail)
      << ", \"raw_path\": " << JsonQuote(info_.raw_kind)
      << ", \"raw_reason\": " << JsonQuote(info_.raw_reason)
      << ", \"raw_detail\": " << JsonQuote(info_.raw_detail)
      << ",\n    \"memcpy_gbps\": " << JsonNumber(info_.memcpy.gbps)
      << ", \"memcpy_bytes\": " << info_.memcpy.bytes
      << ", \"memcpy_copies\": " << info_.memcpy.copies << ", \"memcpy_counting\": "
      << JsonQuote(
             "rank 0, one core, std::memcpy of memcpy_bytes to another buffer, best of "
             "memcpy_copies; bytes copied once / seconds / 1e9")
      << "},\n  \"rows\": [";
  for (size_t i = 0; i < rows_.size(); ++i) {
    out << (i == 0 ? "\n    " : ",\n    ") << RowJson(rows_[i]);
  }
  out << "\n  ]\n}\n";
  return out.str();
}

}  // namespace bench
