// libFuzzer target for the config registry (core/config.h). The input is an
// environment, one NAME=VALUE per line; LoadConfig reads it through an EnvLookup.
// Invariants checked on every input:
//  - loading is deterministic (same status, same Config);
//  - an accepted environment yields numeric fields inside the ranges the registry
//    declares, holding the value that was set (or the default when unset);
//  - a rejected environment is an InvalidArgument that names one variable that was
//    set, quotes its value, and is that variable's own fault (it alone gives the
//    same error);
//  - FindUnknownConfigVars reports only BRAID_* names that were given and are not
//    declared, each with no suggestion or a declared one.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "core/config.h"

namespace {

using Env = std::map<std::string, std::string>;

void Fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_config: %s\n", what.c_str());
  std::abort();
}

Env ParseEnv(const uint8_t* data, size_t size) {
  Env env;
  std::string text(reinterpret_cast<const char*>(data), size);
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    size_t eq = line.find('=');
    // An environment string ends at its first NUL, as getenv would see it.
    if (eq != std::string::npos) env[line.substr(0, eq)] = line.substr(eq + 1).c_str();
    start = end + 1;
  }
  return env;
}

braid::Status Load(const Env& env, braid::Config* config) {
  return braid::LoadConfig(
      [&env](const char* name) -> const char* {
        auto it = env.find(name);
        return it == env.end() ? nullptr : it->second.c_str();
      },
      config);
}

// The numeric fields, read as double, by the name of the variable that sets them.
// Independent of core/config.cc on purpose: this is what the fuzzer checks it against.
struct NumericField {
  const char* name;
  bool integer;
  double (*get)(const braid::Config&);
};

const NumericField kNumericFields[] = {
    {"BRAID_FUSION_THRESHOLD_BYTES", true,
     [](const braid::Config& c) { return static_cast<double>(c.fusion_threshold_bytes); }},
    {"BRAID_CYCLE_TIME_MS", false, [](const braid::Config& c) { return c.cycle_time_ms; }},
    {"BRAID_IDLE_CYCLE_TIME_MS", false,
     [](const braid::Config& c) { return c.idle_cycle_time_ms; }},
    {"BRAID_CACHE_CAPACITY", true,
     [](const braid::Config& c) { return static_cast<double>(c.cache_capacity); }},
    {"BRAID_STALL_WARNING_SECONDS", false,
     [](const braid::Config& c) { return c.stall_warning_seconds; }},
    {"BRAID_STALL_TIMEOUT_SECONDS", false,
     [](const braid::Config& c) { return c.stall_timeout_seconds; }},
};

const braid::ConfigVarInfo& Declared(const char* name) {
  static const std::vector<braid::ConfigVarInfo> vars = braid::DescribeConfigVars();
  for (const auto& v : vars) {
    if (v.name == name) return v;
  }
  Fail(std::string("no declared variable ") + name);
  std::abort();
}

// "[lo, hi]" as DescribeConfigVars writes it.
void DeclaredRange(const braid::ConfigVarInfo& info, double* lo, double* hi) {
  if (std::sscanf(info.accepted.c_str(), "[%lf, %lf]", lo, hi) != 2) {
    Fail(info.name + ": range '" + info.accepted + "' does not read as [lo, hi]");
  }
}

// The registry prints float bounds with six significant digits.
bool Within(double v, double lo, double hi) {
  double slack = 1e-5 * std::max(std::fabs(lo), std::fabs(hi));
  return v >= lo - slack && v <= hi + slack;
}

bool SameBits(double a, double b) {
  return std::memcmp(&a, &b, sizeof(double)) == 0;
}

void CheckNumeric(const Env& env, const braid::Config& config) {
  const braid::Config defaults;
  for (const NumericField& f : kNumericFields) {
    double lo = 0, hi = 0;
    DeclaredRange(Declared(f.name), &lo, &hi);
    double v = f.get(config);
    if (!Within(v, lo, hi)) Fail(std::string(f.name) + " accepted outside its range");
    auto it = env.find(f.name);
    if (it == env.end()) {
      if (!SameBits(v, f.get(defaults))) Fail(std::string(f.name) + " unset but not default");
      continue;
    }
    const char* text = it->second.c_str();
    double parsed = f.integer ? static_cast<double>(std::strtoll(text, nullptr, 10))
                              : std::strtod(text, nullptr);
    if (!SameBits(v, parsed)) Fail(std::string(f.name) + " holds another value than was set");
  }
}

void CheckOthers(const Env& env, const braid::Config& config) {
  auto level = env.find("BRAID_LOG_LEVEL");
  braid::LogLevel want = braid::Config().log_level;
  if (level != env.end() && !braid::ParseLogLevel(level->second, &want)) {
    Fail("accepted an unknown log level");
  }
  if (config.log_level != want) Fail("log level differs from the one set");
  auto timeline = env.find("BRAID_TIMELINE");
  std::string path = timeline == env.end() ? "" : timeline->second;
  if (config.timeline_path != path) Fail("timeline path differs from the one set");
  auto gpu = env.find("BRAID_GPU_BACKEND");
  braid::GpuBackend backend = braid::Config().gpu_backend;
  if (gpu != env.end() && !braid::ParseGpuBackend(gpu->second, &backend)) {
    Fail("accepted an unknown GPU backend");
  }
  if (config.gpu_backend != backend) Fail("GPU backend differs from the one set");
}

// Every declared variable that is set must be acceptable on its own too.
void CheckAcceptedAlone(const Env& env) {
  for (const auto& info : braid::DescribeConfigVars()) {
    auto it = env.find(info.name);
    if (it == env.end()) continue;
    braid::Config alone;
    if (!Load({*it}, &alone).ok()) Fail(info.name + " accepted with others but not alone");
  }
}

void CheckRejection(const Env& env, const braid::Status& st) {
  if (st.code() != braid::StatusCode::kInvalidArgument) Fail("rejection is not InvalidArgument");
  for (const auto& info : braid::DescribeConfigVars()) {
    auto it = env.find(info.name);
    if (it == env.end()) continue;
    if (st.message().rfind(info.name + "='" + it->second + "' ", 0) != 0) continue;
    braid::Config alone;
    braid::Status single = Load({*it}, &alone);
    if (single.message() != st.message()) Fail(info.name + " is not at fault on its own");
    return;
  }
  Fail("rejection names no variable that was set: " + st.message());
}

bool SameConfig(const braid::Config& a, const braid::Config& b) {
  for (const NumericField& f : kNumericFields) {
    if (!SameBits(f.get(a), f.get(b))) return false;
  }
  return a.log_level == b.log_level && a.timeline_path == b.timeline_path &&
         a.gpu_backend == b.gpu_backend;
}

bool IsDeclared(const std::string& name) {
  for (const auto& info : braid::DescribeConfigVars()) {
    if (info.name == name) return true;
  }
  return false;
}

void CheckUnknownNames(const Env& env) {
  std::vector<std::string> names;
  // The closest-name search is an edit distance against every declared name; with
  // many or long names its instrumented inner loop would slow the whole run down a
  // hundred times. Real variable names are short, and a few per input suffice.
  for (const auto& kv : env) {
    if (kv.first.size() <= 40 && names.size() < 4) names.push_back(kv.first);
  }
  for (const braid::UnknownConfigVar& u : braid::FindUnknownConfigVars(names)) {
    if (std::find(names.begin(), names.end(), u.name) == names.end()) {
      Fail("unknown name '" + u.name + "' was not given");
    }
    if (u.name.rfind("BRAID_", 0) != 0) Fail("'" + u.name + "' is not a BRAID_ name");
    if (IsDeclared(u.name)) Fail(u.name + " is declared but reported unknown");
    if (!u.closest.empty() && !IsDeclared(u.closest)) {
      Fail("suggested '" + u.closest + "' is not declared");
    }
    if (braid::DescribeUnknownConfigVar(u).find(u.name) == std::string::npos) {
      Fail("the description of " + u.name + " does not name it");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Env env = ParseEnv(data, size);
  CheckUnknownNames(env);
  braid::Config first, second;
  braid::Status st = Load(env, &first);
  braid::Status again = Load(env, &second);
  if (st.code() != again.code() || st.message() != again.message()) Fail("status not repeatable");
  if (!st.ok()) {
    CheckRejection(env, st);
    return 0;
  }
  if (!SameConfig(first, second)) Fail("config not repeatable");
  CheckNumeric(env, first);
  CheckOthers(env, first);
  CheckAcceptedAlone(env);
  return 0;
}
