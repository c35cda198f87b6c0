#include <pybind11/stl.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>

#include "braid/config.h"
#include "core/config.h"
#include "core/engine.h"
#include "engine.h"
#include "engine_state.h"
#include "errors.h"
#include "placement_binding.h"

namespace py = pybind11;

namespace braid::python {
namespace {

std::shared_mutex g_mutex;  // shared: enqueue and queries; exclusive: init/shutdown
std::unique_ptr<Engine> g_engine;

void ShutdownAtExit() {
  std::unique_lock<std::shared_mutex> lock(g_mutex);
  g_engine.reset();
}

void Init(std::optional<uintptr_t> comm_address) {
  Status status;
  {
    py::gil_scoped_release release;
    std::unique_lock<std::shared_mutex> lock(g_mutex);
    if (g_engine && g_engine->running()) return;
    g_engine.reset();
    EngineOptions options;
    if (comm_address) options.mpi_comm = reinterpret_cast<const void*>(*comm_address);
    status = Engine::Create(options, &g_engine);
    if (status.ok()) {
      // The engine stops before MPI goes, as in the C API.
      CallBeforeMpiFinalize(&ShutdownAtExit);
      static std::once_flag exit_hook;
      std::call_once(exit_hook, [] { std::atexit(ShutdownAtExit); });
    }
  }
  ThrowIfError(status);
  SweepOrphans();
}

void Shutdown() {
  {
    py::gil_scoped_release release;
    ShutdownAtExit();
  }
  SweepOrphans();
}

bool IsInitialized() {
  std::shared_lock<std::shared_mutex> lock(g_mutex);
  return g_engine && g_engine->running();
}

template <typename F>
int Query(F f) {
  std::shared_lock<std::shared_mutex> lock(g_mutex);
  return g_engine ? f(g_engine->world()) : -1;
}

// This rank's placement as applied at init (core/placement.h).
py::dict CurrentPlacement() {
  std::shared_lock<std::shared_mutex> lock(g_mutex);
  if (!g_engine) {
    ThrowIfError(Status(StatusCode::kNotInitialized,
                        "braid is not initialized: call braid.init() first (or it was shut down)"));
  }
  const RankPlacement& placement = g_engine->placement();
  const MachineTopology* machine = placement.machine();
  py::dict d = PlacementDict(placement.mine(), machine != nullptr ? machine->host : "");
  d["fusion_buffer_numa_nodes"] = g_engine->FusionBufferNodes();
  return d;
}

py::list ConfigVars() {
  py::list out;
  for (const ConfigVarInfo& v : DescribeConfigVars()) {
    py::dict d;
    d["name"] = v.name;
    d["type"] = v.type;
    d["default"] = v.default_value;
    d["accepted"] = v.accepted;
    d["help"] = v.help;
    out.append(d);
  }
  return out;
}

// What the build has, not what this machine can run: the CUDA plugin (and with it
// libcudart and libnccl) is only loaded when the first GPU tensor is executed, so
// these never load it.
bool CudaBuilt() {
  return DeviceTensorsSupported();
}
bool NcclBuilt() {
  return BRAID_HAVE_NCCL && DeviceTensorsSupported();
}

py::dict BuildInfo() {
  py::dict d;
  d["version"] = BRAID_VERSION;
  d["mpi"] = true;
  d["cuda"] = CudaBuilt();
  d["nccl"] = NcclBuilt();
  d["hwloc"] = static_cast<bool>(BRAID_HAVE_HWLOC);
  return d;
}

}  // namespace

Status EnqueueOnDefault(Request request, std::shared_ptr<Handle>* handle) {
  std::shared_lock<std::shared_mutex> lock(g_mutex);
  if (!g_engine) {
    return Status(StatusCode::kNotInitialized,
                  "braid is not initialized: call braid.init() first (or it was shut down)");
  }
  return g_engine->Enqueue(std::move(request), handle);
}

void BindEngine(py::module_& m) {
  m.def("init", &Init, py::arg("comm_address") = py::none(),
        "Starts the default engine (collective). comm_address: address of an MPI_Comm.");
  m.def("shutdown", &Shutdown, "Stops the default engine (collective).");
  m.def("is_initialized", &IsInitialized);
  m.def("rank", [] { return Query([](const WorldInfo& w) { return w.rank; }); });
  m.def("size", [] { return Query([](const WorldInfo& w) { return w.size; }); });
  m.def("local_rank", [] { return Query([](const WorldInfo& w) { return w.local_rank; }); });
  m.def("local_size", [] { return Query([](const WorldInfo& w) { return w.local_size; }); });
  m.def("cross_rank", [] { return Query([](const WorldInfo& w) { return w.cross_rank; }); });
  m.def("cross_size", [] { return Query([](const WorldInfo& w) { return w.cross_size; }); });
  m.def("mpi_threads_supported", [] {
    return Query([](const WorldInfo& w) { return w.mpi_threads_multiple ? 1 : 0; }) == 1;
  });
  m.def("mpi_built", [] { return true; });
  m.def("mpi_enabled", [] { return true; });
  m.def("nccl_built", &NcclBuilt);
  m.def("cuda_built", &CudaBuilt);
  m.def("placement", &CurrentPlacement, "This rank's placement as applied at init.");
  m.def("config_vars", &ConfigVars, "Every BRAID_* variable: name, type, default, accepted, help.");
  m.def("build_info", &BuildInfo, "Which optional parts this build has.");
}

}  // namespace braid::python
