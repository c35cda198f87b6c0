#include <gtest/gtest.h>

#include <map>
#include <string>

#include "core/config.h"

namespace braid {
namespace {

Status LoadFrom(const std::map<std::string, std::string>& env, Config* config) {
  return LoadConfig(
      [&env](const char* name) -> const char* {
        auto it = env.find(name);
        return it == env.end() ? nullptr : it->second.c_str();
      },
      config);
}

TEST(Config, DefaultsWhenNothingIsSet) {
  Config config;
  config.cache_capacity = 7;
  ASSERT_TRUE(LoadFrom({}, &config).ok());
  EXPECT_EQ(config.fusion_threshold_bytes, 64 << 20);
  EXPECT_EQ(config.cache_capacity, 1024);
  // Finite by default: a job with a dead or stuck rank ends instead of hanging.
  EXPECT_EQ(config.stall_timeout_seconds, 600.0);
  EXPECT_EQ(config.log_level, LogLevel::kWarning);
  EXPECT_TRUE(config.timeline_path.empty());
}

TEST(Config, ParsesEveryType) {
  Config config;
  Status st = LoadFrom({{"BRAID_FUSION_THRESHOLD_BYTES", "1048576"},
                        {"BRAID_CYCLE_TIME_MS", "2.5"},
                        {"BRAID_CACHE_CAPACITY", "0"},
                        {"BRAID_STALL_TIMEOUT_SECONDS", "30"},
                        {"BRAID_LOG_LEVEL", "DEBUG"},
                        {"BRAID_TIMELINE", "/tmp/t.json"}},
                       &config);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(config.fusion_threshold_bytes, 1048576);
  EXPECT_DOUBLE_EQ(config.cycle_time_ms, 2.5);
  EXPECT_EQ(config.cache_capacity, 0);
  EXPECT_DOUBLE_EQ(config.stall_timeout_seconds, 30);
  EXPECT_EQ(config.log_level, LogLevel::kDebug);
  EXPECT_EQ(config.timeline_path, "/tmp/t.json");
}

// BRAID_HOST_BACKEND: auto by default, the three names, anything else refused.
TEST(Config, HostBackend) {
  Config config;
  ASSERT_TRUE(LoadFrom({}, &config).ok());
  EXPECT_EQ(config.host_backend, HostBackend::kAuto);
  EXPECT_EQ(config.shm_slot_bytes, 0);
  for (HostBackend b : {HostBackend::kAuto, HostBackend::kMpi, HostBackend::kShm}) {
    ASSERT_TRUE(LoadFrom({{"BRAID_HOST_BACKEND", HostBackendName(b)}}, &config).ok());
    EXPECT_EQ(config.host_backend, b);
  }
  ASSERT_TRUE(LoadFrom({{"BRAID_SHM_SLOT_BYTES", "4096"}}, &config).ok());
  EXPECT_EQ(config.shm_slot_bytes, 4096);
  Status st = LoadFrom({{"BRAID_HOST_BACKEND", "SHM "}}, &config);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("BRAID_HOST_BACKEND"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("auto|mpi|shm"), std::string::npos) << st.message();
  EXPECT_FALSE(LoadFrom({{"BRAID_SHM_SLOT_BYTES", "-1"}}, &config).ok());
}

TEST(Config, Placement) {
  Config config;
  ASSERT_TRUE(LoadFrom({}, &config).ok());
  EXPECT_EQ(config.bind, BindMode::kAuto);
  EXPECT_TRUE(config.gpu_map.empty());
  EXPECT_TRUE(config.topology_file.empty());
  ASSERT_TRUE(
      LoadFrom(
          {{"BRAID_BIND", "numa"}, {"BRAID_GPU_MAP", "3,2,1,0"}, {"BRAID_TOPOLOGY_FILE", "/x.xml"}},
          &config)
          .ok());
  EXPECT_EQ(config.bind, BindMode::kNuma);
  EXPECT_EQ(config.gpu_map, (std::vector<int>{3, 2, 1, 0}));
  EXPECT_EQ(config.topology_file, "/x.xml");
  ASSERT_TRUE(LoadFrom({{"BRAID_GPU_MAP", ""}}, &config).ok());  // empty is unset
  EXPECT_TRUE(config.gpu_map.empty());
}

struct BadValue {
  const char* name;
  const char* value;
  const char* expected_words;
};

class ConfigRejects : public ::testing::TestWithParam<BadValue> {};

TEST_P(ConfigRejects, NamesTheVariableAndTheRange) {
  Config config;
  Status st = LoadFrom({{GetParam().name, GetParam().value}}, &config);
  ASSERT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find(GetParam().name), std::string::npos) << st.message();
  EXPECT_NE(st.message().find(GetParam().value), std::string::npos) << st.message();
  EXPECT_NE(st.message().find(GetParam().expected_words), std::string::npos) << st.message();
}

INSTANTIATE_TEST_SUITE_P(
    BadValues, ConfigRejects,
    ::testing::Values(BadValue{"BRAID_CACHE_CAPACITY", "abc", "not an integer"},
                      BadValue{"BRAID_CACHE_CAPACITY", "12x", "not an integer"},
                      BadValue{"BRAID_FUSION_THRESHOLD_BYTES", "-5", "[0, "},
                      BadValue{"BRAID_CYCLE_TIME_MS", "0", "out of range"},
                      BadValue{"BRAID_CYCLE_TIME_MS", "fast", "not a number"},
                      BadValue{"BRAID_STALL_TIMEOUT_SECONDS", "nan", "not a number"},
                      BadValue{"BRAID_LOG_LEVEL", "loud", "trace|debug"},
                      BadValue{"BRAID_CACHE_CAPACITY", "", "not an integer"},
                      BadValue{"BRAID_BIND", "sockets", "auto|none|cores|numa"},
                      BadValue{"BRAID_GPU_MAP", "0,,1", "GPU ordinals"},
                      BadValue{"BRAID_GPU_MAP", "-1", "GPU ordinals"},
                      BadValue{"BRAID_GPU_MAP", "1;2", "GPU ordinals"}));

TEST(Config, EveryVariableIsDescribedOnceWithHelp) {
  std::map<std::string, int> seen;
  for (const ConfigVarInfo& v : DescribeConfigVars()) {
    EXPECT_EQ(v.name.rfind("BRAID_", 0), 0u) << v.name;
    EXPECT_FALSE(v.help.empty()) << v.name;
    EXPECT_FALSE(v.accepted.empty()) << v.name;
    ++seen[v.name];
  }
  for (const auto& kv : seen) EXPECT_EQ(kv.second, 1) << kv.first;
  for (const char* required :
       {"BRAID_FUSION_THRESHOLD_BYTES", "BRAID_CYCLE_TIME_MS", "BRAID_CACHE_CAPACITY",
        "BRAID_STALL_WARNING_SECONDS", "BRAID_STALL_TIMEOUT_SECONDS", "BRAID_LOG_LEVEL",
        "BRAID_TIMELINE"}) {
    EXPECT_EQ(seen.count(required), 1u) << required;
  }
}

TEST(Config, DefaultsListedInTheRegistryAreAccepted) {
  // Feeding each described default back in must parse to the same configuration.
  std::map<std::string, std::string> env;
  for (const ConfigVarInfo& v : DescribeConfigVars()) env[v.name] = v.default_value;
  Config from_defaults;
  Status st = LoadFrom(env, &from_defaults);
  ASSERT_TRUE(st.ok()) << st.ToString();
  Config plain;
  EXPECT_EQ(from_defaults.fusion_threshold_bytes, plain.fusion_threshold_bytes);
  EXPECT_EQ(from_defaults.cache_capacity, plain.cache_capacity);
  EXPECT_DOUBLE_EQ(from_defaults.stall_warning_seconds, plain.stall_warning_seconds);
}

TEST(Config, UnknownVariablesAreNamedWithTheClosestDeclaredOne) {
  std::vector<UnknownConfigVar> unknown = FindUnknownConfigVars(
      {"PATH", "BRAID_FUSION_THRESHOLD", "BRAID_CYCLE_TIME_MS", "BRAID_STAL_TIMEOUT_SECONDS",
       "BRAID_VENV", "BRAID_SOMETHING_ELSE_ENTIRELY", "BRAID_LOG_LEVLE"});
  ASSERT_EQ(unknown.size(), 4u);
  EXPECT_EQ(unknown[0].name, "BRAID_FUSION_THRESHOLD");
  EXPECT_EQ(unknown[0].closest, "BRAID_FUSION_THRESHOLD_BYTES");
  EXPECT_EQ(DescribeUnknownConfigVar(unknown[0]),
            "BRAID_FUSION_THRESHOLD is not a braid variable; did you mean "
            "BRAID_FUSION_THRESHOLD_BYTES?");
  EXPECT_EQ(unknown[1].closest, "BRAID_STALL_TIMEOUT_SECONDS");
  EXPECT_EQ(unknown[2].name, "BRAID_SOMETHING_ELSE_ENTIRELY");
  EXPECT_EQ(unknown[2].closest, "");
  EXPECT_NE(DescribeUnknownConfigVar(unknown[2]).find("--help-env"), std::string::npos);
  EXPECT_EQ(unknown[3].closest, "BRAID_LOG_LEVEL");
}

TEST(Config, EveryDeclaredVariableIsKnown) {
  std::vector<std::string> names;
  for (const ConfigVarInfo& var : DescribeConfigVars()) names.push_back(var.name);
  EXPECT_TRUE(FindUnknownConfigVars(names).empty());
}

}  // namespace
}  // namespace braid
