#include "placement_binding.h"

#include <pybind11/stl.h>

#include <memory>
#include <vector>

#include "core/config.h"
#include "errors.h"

namespace py = pybind11;

namespace braid::python {
namespace {

// The table and rows for `local_size` ranks on the topology `source` ("" is this
// machine), under the BRAID_* placement variables of the environment; `bind`
// ("" keeps the environment's) overrides BRAID_BIND.
py::dict PlanPlacement(int local_size, const std::string& source, const std::string& bind) {
  Config config;
  ThrowIfError(LoadConfigFromEnv(&config));
  if (!bind.empty() && !ParseBindMode(bind, &config.bind)) {
    ThrowIfError(InvalidArgument("'" + bind + "' is not a binding; expected auto|none|cores|numa"));
  }
  std::unique_ptr<Topology> topology;
  std::vector<Placement> rows;
  Status loaded;
  {
    py::gil_scoped_release release;  // reading a live machine's PCI tree takes a while
    loaded = Topology::Load(source.empty() ? config.topology_file : source, &topology);
  }
  ThrowIfError(loaded);
  PlacementOptions options;
  options.mode = config.bind;
  options.gpu_map = config.gpu_map;
  ThrowIfError(DecidePlacement(topology->machine(), local_size, options, &rows));
  py::dict out;
  out["table"] = FormatPlacementTable(topology->machine(), rows);
  py::list list;
  for (const Placement& p : rows) list.append(PlacementDict(p, topology->machine().host));
  out["rows"] = list;
  return out;
}

}  // namespace

py::dict PlacementDict(const Placement& p, const std::string& host) {
  py::dict d;
  d["host"] = host;
  d["local_rank"] = p.local_rank;
  d["gpu"] = p.gpu;
  d["gpu_pci_bus_id"] = p.gpu_pci_bus_id;
  d["binding"] = std::string(BindModeName(p.binding));
  d["cpus"] = p.cpus;
  d["coordinator_cpus"] = p.coordinator_cpus;
  d["numa_node"] = p.numa_node;
  d["nic"] = p.nic;
  d["note"] = p.note;
  return d;
}

void BindPlacement(py::module_& m) {
  m.def("topology_supported", &TopologySupported, "Whether this build has hwloc.");
  m.def("plan_placement", &PlanPlacement, py::arg("local_size"), py::arg("source") = "",
        py::arg("bind") = "",
        "The placement of local_size ranks on a topology (\"\": this machine or "
        "BRAID_TOPOLOGY_FILE; a path to hwloc XML; synthetic:<description>): "
        "{'table': text, 'rows': [dict per local rank]}.");
}

}  // namespace braid::python
