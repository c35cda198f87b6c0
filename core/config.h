// The config registry: every BRAID_* environment variable is declared once here
// (name, type, default, unit in the name, help text, validation). A bad value is an
// error at init naming the variable and what it accepts; nothing is silently ignored.
//
// Threading: Config is a plain value, copied into the engine at init.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "collectives/gpu_backend.h"
#include "collectives/host_backend.h"
#include "common/logging.h"
#include "common/status.h"
#include "core/topology.h"

namespace braid {

struct Config {
  int64_t fusion_threshold_bytes = 64 << 20;
  double cycle_time_ms = 1.0;
  double idle_cycle_time_ms = 100.0;
  int64_t cache_capacity = 1024;
  double stall_warning_seconds = 60.0;
  // A name some ranks submitted and others did not, or a collective or negotiation
  // round that has not finished, fails after this long (0: never; stalls are only
  // reported). Ten minutes, torch.distributed's default: longer than any single
  // collective or a rank's evaluation or checkpoint pause, short enough that a job
  // with a dead or stuck rank stops instead of holding its machines for hours.
  double stall_timeout_seconds = 600.0;
  LogLevel log_level = LogLevel::kWarning;
  std::string timeline_path;  // empty: no timeline
  GpuBackend gpu_backend = GpuBackend::kAuto;
  HostBackend host_backend = HostBackend::kAuto;
  int64_t shm_slot_bytes = 0;  // 0: chosen from the fusion threshold
  // Placement (core/topology.h, docs/placement.md).
  BindMode bind = BindMode::kAuto;
  std::string topology_file;  // empty: this machine
  std::vector<int> gpu_map;   // empty: local rank mod the GPU count
};

// One declared variable, as shown by `braidrun --help-env`.
struct ConfigVarInfo {
  std::string name;
  std::string type;           // "int", "float", "string", "enum"
  std::string default_value;  // as text
  std::string accepted;       // e.g. "[0, 1099511627776]" or "trace|debug|..."
  std::string help;
};

// Every declared variable, in declaration order.
std::vector<ConfigVarInfo> DescribeConfigVars();

// Reads every declared variable through `lookup` (returns null when unset) into
// `config`, starting from the defaults.
using EnvLookup = std::function<const char*(const char* name)>;
Status LoadConfig(const EnvLookup& lookup, Config* config);
// LoadConfig over the process environment.
Status LoadConfigFromEnv(Config* config);

// A BRAID_* name that nothing in braid reads (a typo, or a variable of another
// version), with the declared name closest to it ("" when none is close).
struct UnknownConfigVar {
  std::string name;
  std::string closest;
};
// The unknown BRAID_* names among `names` (others are ignored), in their order.
std::vector<UnknownConfigVar> FindUnknownConfigVars(const std::vector<std::string>& names);
// The names of the process's environment variables.
std::vector<std::string> EnvironmentNames();
// "NAME is not a braid variable; did you mean CLOSEST?" (or where to find them).
std::string DescribeUnknownConfigVar(const UnknownConfigVar& var);

}  // namespace braid
