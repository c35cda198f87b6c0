#include "options.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <vector>

namespace bench {
namespace {

struct OpEntry {
  const char* name;
  int op;
};
const OpEntry kOps[] = {
    {"sum", BRAID_SUM}, {"average", BRAID_AVERAGE}, {"avg", BRAID_AVERAGE},    {"min", BRAID_MIN},
    {"max", BRAID_MAX}, {"prod", BRAID_PRODUCT},    {"product", BRAID_PRODUCT}};

// "64", "64K", "16M", "1G" (binary multiples, as nccl-tests).
bool ParseBytes(const std::string& text, int64_t* out) {
  if (text.empty() || text[0] == '-') return false;
  errno = 0;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (errno != 0 || end == text.c_str()) return false;
  double scale = 1;
  const std::string suffix(end);
  if (suffix == "K" || suffix == "k" || suffix == "KiB")
    scale = 1024.0;
  else if (suffix == "M" || suffix == "m" || suffix == "MiB")
    scale = 1024.0 * 1024;
  else if (suffix == "G" || suffix == "g" || suffix == "GiB")
    scale = 1024.0 * 1024 * 1024;
  else if (!suffix.empty() && suffix != "B")
    return false;
  const double bytes = value * scale;
  if (bytes != std::floor(bytes) || bytes > 1e15) return false;
  *out = static_cast<int64_t>(bytes);
  return true;
}

bool ParseInt(const std::string& text, int64_t lo, int64_t hi, int64_t* out) {
  if (text.empty()) return false;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || v < lo || v > hi) return false;
  *out = v;
  return true;
}

using Setter = std::function<bool(const std::string&, Options*)>;

struct Flag {
  const char* long_name;
  char short_name;  // 0: none
  bool takes_value;
  const char* expects;  // what a bad value should have been
  Setter set;
};

template <class T>
Setter IntSetter(T Options::*field, int64_t lo, int64_t hi) {
  return [=](const std::string& v, Options* o) {
    int64_t x;
    if (!ParseInt(v, lo, hi, &x)) return false;
    o->*field = static_cast<T>(x);
    return true;
  };
}

Setter BytesSetter(int64_t Options::*field) {
  return [=](const std::string& v, Options* o) {
    int64_t x;
    if (!ParseBytes(v, &x) || x < 1) return false;
    o->*field = x;
    return true;
  };
}

bool SetDType(const std::string& v, Options* o) {
  o->dtype = FindDType(v);
  return o->dtype != nullptr;
}

bool SetOp(const std::string& v, Options* o) {
  for (const OpEntry& e : kOps) {
    if (v == e.name) {
      o->op = e.op;
      return true;
    }
  }
  return false;
}

bool SetCollective(const std::string& v, Options* o) {
  if (v == "allreduce")
    o->collective = Collective::kAllreduce;
  else if (v == "allgather")
    o->collective = Collective::kAllgather;
  else if (v == "broadcast" || v == "bcast")
    o->collective = Collective::kBroadcast;
  else if (v == "sparse" || v == "sparse_allreduce")
    o->collective = Collective::kSparse;
  else if (v == "neighbor" || v == "neighbor_allreduce")
    o->collective = Collective::kNeighbor;
  else
    return false;
  return true;
}

// "0.1,0.01": fractions in (0, 1].
bool SetDensities(const std::string& v, Options* o) {
  std::vector<double> out;
  size_t start = 0;
  while (start <= v.size()) {
    const size_t end = std::min(v.find(',', start), v.size());
    const std::string item = v.substr(start, end - start);
    char* stop = nullptr;
    const double d = std::strtod(item.c_str(), &stop);
    if (item.empty() || *stop != '\0' || !(d > 0 && d <= 1)) return false;
    out.push_back(d);
    start = end + 1;
  }
  o->densities = out;
  return !out.empty();
}

// The built-in graphs of ops/gossip/graph.h (a user matrix has no command line).
const char* const kGraphs[] = {"ring",     "torus", "exponential", "one_peer_exponential",
                               "complete", "base"};

bool SetGraph(const std::string& v, Options* o) {
  for (const char* g : kGraphs) {
    if (v == g) {
      o->graph = v;
      return true;
    }
  }
  return false;
}

bool SetDevice(const std::string& v, Options* o) {
  if (v == "cpu")
    o->device = Device::kCpu;
  else if (v == "cuda" || v == "gpu")
    o->device = Device::kCuda;
  else
    return false;
  return true;
}

bool SetTarget(const std::string& v, Options* o) {
  char* end = nullptr;
  const double s = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || !(s > 0 && s <= 600)) return false;
  o->target_seconds = s;
  return true;
}

const std::vector<Flag>& Flags() {
  static const std::vector<Flag> flags = {
      {"min-bytes", 'b', true, "a size >= 1 such as 4, 64K, 1M", BytesSetter(&Options::min_bytes)},
      {"max-bytes", 'e', true, "a size >= 1 such as 16M, 256M", BytesSetter(&Options::max_bytes)},
      {"step-factor", 'f', true, "an integer from 2 to 1024",
       IntSetter(&Options::step_factor, 2, 1024)},
      {"dtype", 'd', true, DTypeNames(), SetDType},
      {"op", 'o', true, "sum, average (avg), min, max or prod (product)", SetOp},
      {"collective", 'c', true, "allreduce, allgather, broadcast, sparse or neighbor",
       SetCollective},
      {"densities", 0, true, "fractions in (0, 1] such as 0.1,0.001", SetDensities},
      {"graph", 0, true, NeighborGraphNames(), SetGraph},
      {"one-name", 0, false, "",
       [](const std::string&, Options* o) {
         o->one_name = true;
         return true;
       }},
      {"stages", 0, false, "",
       [](const std::string&, Options* o) {
         o->stages = true;
         return true;
       }},
      {"root", 'r', true, "a rank >= 0", IntSetter(&Options::root, 0, 1 << 30)},
      {"warmup", 'w', true, "an integer from 0 to 100000", IntSetter(&Options::warmup, 0, 100000)},
      {"iters", 'n', true, "an integer from 1 to 1000000", IntSetter(&Options::iters, 1, 1000000)},
      {"rounds", 0, true, "an integer from 1 to 99", IntSetter(&Options::rounds, 1, 99)},
      {"target-seconds", 0, true, "seconds in (0, 600]", SetTarget},
      {"fusion", 0, false, "",
       [](const std::string&, Options* o) {
         o->mode = Mode::kFusion;
         return true;
       }},
      {"fusion-count", 0, true, "an integer from 1 to 100000",
       IntSetter(&Options::fusion_count, 1, 100000)},
      {"fusion-bytes", 0, true, "a size >= 1 such as 64K", BytesSetter(&Options::fusion_bytes)},
      {"device", 0, true, "cpu or cuda", SetDevice},
      {"kernels", 0, false, "",
       [](const std::string&, Options* o) {
         o->kernels = true;
         return true;
       }},
      {"count", 0, true, "an integer from 1 to 1000000",
       IntSetter(&Options::kernel_count, 1, 1000000)},
      {"bytes", 0, true, "a size >= 1 such as 4K, 256K", BytesSetter(&Options::kernel_bytes)},
      {"json", 'J', true, "a file path",
       [](const std::string& v, Options* o) {
         o->json_path = v;
         return !v.empty();
       }},
      {"plot", 0, true, "a file path such as busbw.png",
       [](const std::string& v, Options* o) {
         o->plot_path = v;
         return !v.empty();
       }},
      {"plot-python", 0, true, "a Python interpreter such as python3 or .venv/bin/python",
       [](const std::string& v, Options* o) {
         o->plot_python = v;
         return !v.empty();
       }},
      {"help", 'h', false, "",
       [](const std::string&, Options* o) {
         o->help = true;
         return true;
       }},
  };
  return flags;
}

// Matches "--name", "--name=value" or "-x"; *inline_value is set for "=value".
const Flag* Match(const std::string& arg, std::string* inline_value, bool* has_inline) {
  *has_inline = false;
  for (const Flag& f : Flags()) {
    if (f.short_name != 0 && arg.size() == 2 && arg[0] == '-' && arg[1] == f.short_name) return &f;
    const std::string name = std::string("--") + f.long_name;
    if (arg == name) return &f;
    if (arg.compare(0, name.size() + 1, name + "=") == 0) {
      *inline_value = arg.substr(name.size() + 1);
      *has_inline = true;
      return &f;
    }
  }
  return nullptr;
}

bool CheckCombination(const Options& o, std::string* error) {
  if (o.max_bytes < o.min_bytes) {
    *error = "--max-bytes (" + std::to_string(o.max_bytes) + ") is below --min-bytes (" +
             std::to_string(o.min_bytes) + ")";
    return false;
  }
  if (o.mode == Mode::kFusion && o.collective != Collective::kAllreduce) {
    *error = "--fusion measures allreduce only; drop --collective";
    return false;
  }
  if (o.collective == Collective::kSparse && o.dtype->braid != BRAID_FLOAT32 &&
      o.dtype->braid != BRAID_FLOAT64 && o.dtype->braid != BRAID_FLOAT16 &&
      o.dtype->braid != BRAID_BFLOAT16) {
    *error = "-c sparse sends float values: use --dtype float32, float64, float16 or bfloat16";
    return false;
  }
  if (o.collective == Collective::kSparse && o.op != BRAID_SUM && o.op != BRAID_AVERAGE) {
    *error = "-c sparse sums or averages: use --op sum or avg";
    return false;
  }
  if (o.collective == Collective::kNeighbor && !o.dtype->floating) {
    *error = "-c neighbor mixes floats: use --dtype float32, float64, float16 or bfloat16";
    return false;
  }
  if (o.collective == Collective::kNeighbor && o.op != BRAID_SUM && o.op != BRAID_AVERAGE) {
    *error = "-c neighbor compares with an averaging allreduce: drop --op";
    return false;
  }
  if (o.kernels && o.device != Device::kCuda) {
    *error = "--kernels times GPU kernels: add --device cuda";
    return false;
  }
  if (o.kernels && o.mode == Mode::kFusion) {
    *error = "--kernels and --fusion are separate modes; choose one";
    return false;
  }
  if (!o.kernels && (o.kernel_count > 0 || o.kernel_bytes > 0)) {
    *error = "--count and --bytes set the batch shape of --kernels";
    return false;
  }
  if (o.kernel_bytes % static_cast<int64_t>(o.dtype->size) != 0) {
    *error = "--bytes must be whole " + std::string(o.dtype->name) + " elements";
    return false;
  }
  if (o.fusion_bytes < static_cast<int64_t>(o.dtype->size)) {
    *error = "--fusion-bytes must hold at least one " + std::string(o.dtype->name);
    return false;
  }
  if (o.max_bytes < static_cast<int64_t>(o.dtype->size)) {
    *error = "--max-bytes must hold at least one " + std::string(o.dtype->name);
    return false;
  }
  return true;
}

}  // namespace

bool ParseOptions(int argc, char** argv, Options* options, std::string* error) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    std::string value;
    bool has_inline = false;
    const Flag* flag = Match(arg, &value, &has_inline);
    if (flag == nullptr) {
      *error = "unknown option '" + arg + "'";
      return false;
    }
    const std::string shown = std::string("--") + flag->long_name;
    if (flag->takes_value && !has_inline) {
      if (i + 1 >= argc) {
        *error = shown + " needs a value: " + flag->expects;
        return false;
      }
      value = argv[++i];
    } else if (!flag->takes_value && has_inline) {
      *error = shown + " takes no value";
      return false;
    }
    if (!flag->set(value, options)) {
      *error = "bad value '" + value + "' for " + shown + ": expected " + flag->expects;
      return false;
    }
  }
  return CheckCombination(*options, error);
}

bool CheckForWorld(const Options& options, int world_size, std::string* error) {
  if (options.collective == Collective::kBroadcast && options.root >= world_size) {
    *error = "--root " + std::to_string(options.root) + " is not a rank (" +
             std::to_string(world_size) + " ranks)";
    return false;
  }
  const bool allgather = options.collective == Collective::kAllgather;
  if (options.mode == Mode::kSweep && !options.kernels &&
      SweepCounts(options, allgather ? world_size : 1).empty()) {
    *error = std::string("no size from --min-bytes to --max-bytes holds one ") +
             options.dtype->name + (allgather ? " per rank" : "");
    return false;
  }
  return true;
}

std::vector<int64_t> SweepCounts(const Options& o, int64_t per_rank_divisor) {
  std::vector<int64_t> counts;
  for (int64_t bytes = o.min_bytes; bytes <= o.max_bytes; bytes *= o.step_factor) {
    const int64_t count = bytes / static_cast<int64_t>(o.dtype->size) / per_rank_divisor;
    if (count > 0 && (counts.empty() || counts.back() != count)) counts.push_back(count);
    if (bytes > o.max_bytes / o.step_factor) break;  // the next step would pass the end
  }
  return counts;
}

const char* CollectiveName(Collective c) {
  switch (c) {
    case Collective::kAllreduce:
      return "allreduce";
    case Collective::kAllgather:
      return "allgather";
    case Collective::kBroadcast:
      return "broadcast";
    case Collective::kSparse:
      return "sparse_allreduce";
    case Collective::kNeighbor:
      return "neighbor_allreduce";
  }
  return "?";
}

const char* NeighborGraphNames() {
  return "ring, torus, exponential, one_peer_exponential, complete or base";
}

const char* DeviceName(Device d) {
  return d == Device::kCuda ? "cuda" : "cpu";
}

const char* OpName(int op) {
  switch (op) {
    case BRAID_SUM:
      return "sum";
    case BRAID_AVERAGE:
      return "avg";
    case BRAID_MIN:
      return "min";
    case BRAID_MAX:
      return "max";
    case BRAID_PRODUCT:
      return "prod";
  }
  return "?";
}

}  // namespace bench
