#include "core/config.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sstream>

extern char** environ;

namespace braid {
namespace {

// How one variable is parsed and stored: returns a message on a bad value.
using Apply = std::function<std::string(const std::string& text, Config* config)>;

struct ConfigVar {
  ConfigVarInfo info;
  Apply apply;
};

std::string Range(double lo, double hi) {
  std::ostringstream s;
  s << "[" << lo << ", " << hi << "]";
  return s.str();
}

bool ParseInt(const std::string& text, int64_t* out) {
  if (text.empty()) return false;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *out = v;
  return true;
}

bool ParseDouble(const std::string& text, double* out) {
  if (text.empty()) return false;
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (errno != 0 || *end != '\0' || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

ConfigVar IntVar(const char* name, int64_t Config::*field, int64_t lo, int64_t hi,
                 const char* help) {
  ConfigVar var;
  var.info = {name, "int", std::to_string(Config().*field),
              "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]", help};
  var.apply = [=](const std::string& text, Config* c) -> std::string {
    int64_t v = 0;
    if (!ParseInt(text, &v)) return "is not an integer";
    if (v < lo || v > hi) return "is out of range";
    c->*field = v;
    return "";
  };
  return var;
}

ConfigVar FloatVar(const char* name, double Config::*field, double lo, double hi,
                   const char* help) {
  ConfigVar var;
  std::ostringstream def;
  def << Config().*field;
  var.info = {name, "float", def.str(), Range(lo, hi), help};
  var.apply = [=](const std::string& text, Config* c) -> std::string {
    double v = 0;
    if (!ParseDouble(text, &v)) return "is not a number";
    if (v < lo || v > hi) return "is out of range";
    c->*field = v;
    return "";
  };
  return var;
}

ConfigVar LogLevelVar() {
  ConfigVar var;
  var.info = {"BRAID_LOG_LEVEL", "enum", "warning", "trace|debug|info|warning|error|fatal",
              "Least severe message printed (rank-prefixed, to stderr)."};
  var.apply = [](const std::string& text, Config* c) -> std::string {
    return ParseLogLevel(text, &c->log_level) ? "" : "is not a log level";
  };
  return var;
}

ConfigVar TimelineVar() {
  ConfigVar var;
  var.info = {"BRAID_TIMELINE", "string", "", "a file path; %r is replaced by the rank",
              "Write a Chrome-trace JSON timeline of every tensor's phases to this file. "
              "Without %r only rank 0 writes."};
  var.apply = [](const std::string& text, Config* c) -> std::string {
    c->timeline_path = text;
    return "";
  };
  return var;
}

ConfigVar GpuBackendVar() {
  ConfigVar var;
  var.info = {"BRAID_GPU_BACKEND", "enum", GpuBackendName(Config().gpu_backend), "auto|nccl|mpi",
              "How GPU tensors travel: nccl, mpi (host-staged through pinned host memory, also "
              "how several ranks share one GPU), auto (nccl when built and every local rank has "
              "its own GPU, else mpi)."};
  var.apply = [](const std::string& text, Config* c) -> std::string {
    return ParseGpuBackend(text, &c->gpu_backend) ? "" : "is not a GPU backend";
  };
  return var;
}

ConfigVar HostBackendVar() {
  ConfigVar var;
  var.info = {"BRAID_HOST_BACKEND", "enum", HostBackendName(Config().host_backend), "auto|mpi|shm",
              "How host-memory tensors travel: mpi, shm (a shared-memory segment; every rank "
              "must be on one host), auto (shm when every rank is on one host and there are "
              "several, else mpi; mpi too when the segment cannot be set up)."};
  var.apply = [](const std::string& text, Config* c) -> std::string {
    return ParseHostBackend(text, &c->host_backend) ? "" : "is not a host backend";
  };
  return var;
}

ConfigVar BindVar() {
  ConfigVar var;
  var.info = {"BRAID_BIND", "enum", BindModeName(Config().bind), "auto|none|cores|numa",
              "Where each rank runs (docs/placement.md): cores (its own cores near its GPU, "
              "one of them for the coordinator thread), numa (its NUMA node's cores), none "
              "(leave the affinity as started), auto (cores when every local rank gets two "
              "or more, else numa). A narrower affinity set by the launcher is kept."};
  var.apply = [](const std::string& text, Config* c) -> std::string {
    return ParseBindMode(text, &c->bind) ? "" : "is not a binding";
  };
  return var;
}

ConfigVar TopologyFileVar() {
  ConfigVar var;
  var.info = {"BRAID_TOPOLOGY_FILE", "string", "", "an hwloc XML file, or synthetic:<description>",
              "Plan placement from this saved topology (lstopo file.xml) instead of the live "
              "machine; binding is applied only when the file was saved on this host."};
  var.apply = [](const std::string& text, Config* c) -> std::string {
    c->topology_file = text;
    return "";
  };
  return var;
}

ConfigVar GpuMapVar() {
  ConfigVar var;
  var.info = {"BRAID_GPU_MAP", "string", "", "comma-separated GPU ordinals, e.g. 3,2,1,0",
              "The GPU of local rank r is entry r mod the list's length; unset: r mod the "
              "number of GPUs."};
  var.apply = [](const std::string& text, Config* c) -> std::string {
    std::vector<int> map;
    if (text.empty()) {  // as if unset
      c->gpu_map.clear();
      return "";
    }
    std::stringstream s(text);
    std::string item;
    while (std::getline(s, item, ',')) {
      int64_t v = 0;
      if (!ParseInt(item, &v) || v < 0 || v > 65535) return "is not a list of GPU ordinals";
      map.push_back(static_cast<int>(v));
    }
    if (map.empty()) return "is not a list of GPU ordinals";
    c->gpu_map = map;
    return "";
  };
  return var;
}

const std::vector<ConfigVar>& Registry() {
  static const std::vector<ConfigVar> vars = {
      IntVar("BRAID_FUSION_THRESHOLD_BYTES", &Config::fusion_threshold_bytes, 0, int64_t{1} << 40,
             "Size of the fusion buffer: ready tensors are packed together up to this many "
             "bytes. 0 disables fusion."),
      FloatVar("BRAID_CYCLE_TIME_MS", &Config::cycle_time_ms, 0.01, 10000,
               "Pause between negotiation rounds while some rank waits for others to submit. "
               "New work starts a round at once."),
      FloatVar("BRAID_IDLE_CYCLE_TIME_MS", &Config::idle_cycle_time_ms, 1, 60000,
               "Pause between negotiation rounds while no rank has work pending."),
      IntVar("BRAID_CACHE_CAPACITY", &Config::cache_capacity, 0, 1 << 20,
             "Responses remembered so that repeated names skip negotiation. 0 disables it."),
      FloatVar("BRAID_STALL_WARNING_SECONDS", &Config::stall_warning_seconds, 0.01, 1e7,
               "Rank 0 logs which ranks are missing which tensors once a tensor has waited "
               "this long."),
      FloatVar("BRAID_STALL_TIMEOUT_SECONDS", &Config::stall_timeout_seconds, 0, 1e7,
               "Fail a tensor on every rank once it has waited this long for the others; "
               "end the job on every rank (MPI_Abort) when a collective or a negotiation "
               "round has not finished after this long. 0 disables both."),
      LogLevelVar(),
      TimelineVar(),
      GpuBackendVar(),
      HostBackendVar(),
      IntVar("BRAID_SHM_SLOT_BYTES", &Config::shm_slot_bytes, 0, int64_t{1} << 40,
             "Chunk size of the shared-memory host backend, per rank, for tests and tuning; "
             "0 sizes it from BRAID_FUSION_THRESHOLD_BYTES (up to 2 MiB)."),
      BindVar(),
      TopologyFileVar(),
      GpuMapVar(),
  };
  return vars;
}

}  // namespace

std::vector<ConfigVarInfo> DescribeConfigVars() {
  std::vector<ConfigVarInfo> out;
  for (const auto& var : Registry()) out.push_back(var.info);
  return out;
}

Status LoadConfig(const EnvLookup& lookup, Config* config) {
  *config = Config();
  for (const auto& var : Registry()) {
    const char* value = lookup(var.info.name.c_str());
    if (value == nullptr) continue;
    std::string problem = var.apply(value, config);
    if (!problem.empty()) {
      return InvalidArgument(var.info.name + "='" + value + "' " + problem + "; expected " +
                             var.info.type + " " + var.info.accepted);
    }
  }
  return Status::OK();
}

Status LoadConfigFromEnv(Config* config) {
  return LoadConfig([](const char* name) { return std::getenv(name); }, config);
}

namespace {

// BRAID_* variables that braid's own scripts and tests read, not the engine.
const char* const kToolVariables[] = {"BRAID_VENV", "BRAID_TEST_HUGE",
                                      "BRAID_TEST_RUN_LIMIT_SECONDS"};

// Edit distance (insertions, deletions, substitutions) between two names.
size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The declared name closest to `name`: within a third of its length in edits (a
// missing unit suffix such as _BYTES counts as close), else "".
std::string ClosestDeclared(const std::string& name) {
  std::string best;
  size_t best_distance = 0;
  for (const auto& var : Registry()) {
    const std::string& known = var.info.name;
    const size_t d = EditDistance(name, known);
    if (d > std::max<size_t>(3, known.size() / 3)) continue;
    if (best.empty() || d < best_distance) {
      best = known;
      best_distance = d;
    }
  }
  return best;
}

bool IsKnown(const std::string& name) {
  for (const auto& var : Registry())
    if (var.info.name == name) return true;
  for (const char* tool : kToolVariables)
    if (name == tool) return true;
  return false;
}

}  // namespace

std::vector<UnknownConfigVar> FindUnknownConfigVars(const std::vector<std::string>& names) {
  std::vector<UnknownConfigVar> unknown;
  for (const std::string& name : names) {
    if (name.rfind("BRAID_", 0) != 0 || IsKnown(name)) continue;
    unknown.push_back({name, ClosestDeclared(name)});
  }
  return unknown;
}

std::vector<std::string> EnvironmentNames() {
  std::vector<std::string> names;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const char* eq = std::strchr(*e, '=');
    names.emplace_back(*e, eq != nullptr ? static_cast<size_t>(eq - *e) : std::strlen(*e));
  }
  return names;
}

std::string DescribeUnknownConfigVar(const UnknownConfigVar& var) {
  std::string text = var.name + " is not a braid variable; ";
  if (!var.closest.empty()) return text + "did you mean " + var.closest + "?";
  return text + "`braidrun --help-env` lists them all";
}

}  // namespace braid
