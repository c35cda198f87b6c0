// JSON form of a Report: {"benchmark", "ranks", "settings", "rows": [...]}.
#include <cmath>
#include <cstdio>
#include <sstream>

#include "report.h"

namespace bench {
namespace {

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof(esc), "\\u%04x", c);
      out += esc;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string Number(double v) {
  if (!std::isfinite(v)) return "null";
  char text[32];
  std::snprintf(text, sizeof(text), "%.6g", v);
  return text;
}

std::string Stats(const PathStats& s) {
  std::ostringstream out;
  out << "{\"time_us\": " << Number(s.time_us) << ", \"algbw_gbps\": " << Number(s.algbw)
      << ", \"busbw_gbps\": " << Number(s.busbw) << ", \"wrong\": " << s.wrong
      << ", \"iters_per_round\": " << s.iters << "}";
  return out.str();
}

std::string RowJson(const Row& r) {
  std::ostringstream out;
  out << "{\"mode\": " << Quote(r.mode) << ", \"collective\": " << Quote(r.collective)
      << ", \"bytes\": " << r.bytes << ", \"count\": " << r.count
      << ", \"dtype\": " << Quote(r.dtype) << ", \"op\": " << Quote(r.op)
      << ", \"root\": " << r.root << ",\n     \"engine\": " << Stats(r.engine)
      << ",\n     \"raw\": " << Stats(r.raw) << ",\n     \"ratio\": " << Number(r.ratio);
  if (r.mode == "fusion") {
    out << ", \"tensors\": " << r.tensors << ", \"tensor_bytes\": " << r.tensor_bytes
        << ",\n     \"raw_separate\": " << Stats(r.raw_separate)
        << ",\n     \"time_ratio_engine_over_raw\": " << Number(r.engine.time_us / r.raw.time_us)
        << ", \"time_ratio_engine_over_raw_separate\": "
        << Number(r.engine.time_us / r.raw_separate.time_us);
  }
  out << "}";
  return out.str();
}

}  // namespace

std::string Report::Json() const {
  const Options& o = options_;
  std::ostringstream out;
  out << "{\n  \"benchmark\": \"braid-bench\",\n  \"ranks\": " << ranks_
      << ",\n  \"settings\": {\"mode\": " << Quote(o.mode == Mode::kFusion ? "fusion" : "sweep")
      << ", \"collective\": " << Quote(CollectiveName(o.collective))
      << ", \"dtype\": " << Quote(o.dtype->name) << ", \"op\": " << Quote(OpName(o.op))
      << ", \"root\": " << o.root << ", \"min_bytes\": " << o.min_bytes
      << ", \"max_bytes\": " << o.max_bytes << ", \"step_factor\": " << o.step_factor
      << ", \"warmup\": " << o.warmup
      << ", \"iters\": " << (o.iters > 0 ? std::to_string(o.iters) : "\"adaptive\"")
      << ", \"rounds\": " << o.rounds << ", \"target_seconds\": " << Number(o.target_seconds)
      << ", \"fusion_count\": " << o.fusion_count << ", \"fusion_bytes\": " << o.fusion_bytes
      << ", \"bus_factor\": " << Number(BusFactor(o.collective, ranks_)) << "},\n  \"rows\": [";
  for (size_t i = 0; i < rows_.size(); ++i) {
    out << (i == 0 ? "\n    " : ",\n    ") << RowJson(rows_[i]);
  }
  out << "\n  ]\n}\n";
  return out.str();
}

}  // namespace bench
