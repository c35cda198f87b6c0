// Topology with hwloc: discovery of the machine (cores, NUMA nodes, GPUs, NICs)
// and the binding calls. The only file of braid that includes hwloc.h.
#include <hwloc.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>

#include "common/logging.h"
#include "core/topology.h"

namespace braid {
namespace {

constexpr const char* kSyntheticPrefix = "synthetic:";
constexpr unsigned kNvidiaVendor = 0x10de;

// Owns an hwloc bitmap.
struct Bitmap {
  Bitmap() : map(hwloc_bitmap_alloc()) {}
  ~Bitmap() { hwloc_bitmap_free(map); }
  Bitmap(const Bitmap&) = delete;
  Bitmap& operator=(const Bitmap&) = delete;
  hwloc_bitmap_t map;
};

std::vector<int> Indexes(hwloc_const_bitmap_t map) {
  std::vector<int> out;
  if (map == nullptr) return out;
  for (int i = hwloc_bitmap_first(map); i >= 0; i = hwloc_bitmap_next(map, i)) out.push_back(i);
  return out;
}

void Fill(const std::vector<int>& indexes, hwloc_bitmap_t map) {
  hwloc_bitmap_zero(map);
  for (int i : indexes) hwloc_bitmap_set(map, static_cast<unsigned>(i));
}

std::string ThisHost() {
  char name[256] = {0};
  if (gethostname(name, sizeof name - 1) != 0) return "localhost";
  return name;
}

std::string BusId(hwloc_obj_t pci) {
  char text[32];
  const auto& a = pci->attr->pcidev;
  std::snprintf(text, sizeof text, "%04x:%02x:%02x.%01x", a.domain, a.bus, a.dev, a.func);
  return text;
}

// The cores inside `cpuset`.
std::vector<int> CoresWithin(const MachineTopology& m, hwloc_topology_t topo,
                             hwloc_const_cpuset_t cpuset) {
  std::vector<int> cores;
  Bitmap core_set;
  for (size_t c = 0; c < m.cores.size(); ++c) {
    Fill(m.cores[c].pus, core_set.map);
    if (cpuset != nullptr && hwloc_bitmap_isincluded(core_set.map, cpuset)) cores.push_back(c);
  }
  (void)topo;
  return cores;
}

void DiscoverCpus(hwloc_topology_t topo, MachineTopology* m) {
  const int packages = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE);
  m->packages = std::max(1, packages);
  // Some virtual machines report no cores: each hardware thread is then one.
  hwloc_obj_type_t core_type = HWLOC_OBJ_CORE;
  if (hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE) <= 0) core_type = HWLOC_OBJ_PU;
  const int nodes = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
  const int cores = hwloc_get_nbobjs_by_type(topo, core_type);
  for (int i = 0; i < cores; ++i) {
    hwloc_obj_t core = hwloc_get_obj_by_type(topo, core_type, i);
    TopologyCore out;
    out.pus = Indexes(core->cpuset);
    if (out.pus.empty()) continue;
    hwloc_obj_t package = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_PACKAGE, core);
    out.package = package != nullptr ? static_cast<int>(package->logical_index) : 0;
    for (int n = 0; n < nodes; ++n) {
      hwloc_obj_t node = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, n);
      if (hwloc_bitmap_isincluded(core->cpuset, node->cpuset)) {
        out.numa_node = static_cast<int>(node->os_index);
        break;
      }
    }
    m->cores.push_back(std::move(out));
  }
  for (int n = 0; n < nodes; ++n) {
    hwloc_obj_t node = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, n);
    TopologyNumaNode out;
    out.os_index = static_cast<int>(node->os_index);
    hwloc_obj_t package = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_PACKAGE, node);
    out.package = package != nullptr ? static_cast<int>(package->logical_index) : 0;
    out.cores = CoresWithin(*m, topo, node->cpuset);
    if (!out.cores.empty()) m->numa_nodes.push_back(std::move(out));
  }
}

TopologyDevice Describe(const MachineTopology& m, hwloc_topology_t topo, hwloc_obj_t pci,
                        const std::string& name) {
  TopologyDevice d;
  d.name = name;
  d.pci_bus_id = BusId(pci);
  hwloc_obj_t ancestor = hwloc_get_non_io_ancestor_obj(topo, pci);
  d.near_cores = CoresWithin(m, topo, ancestor != nullptr ? ancestor->cpuset : nullptr);
  for (int c : d.near_cores) {
    if (m.cores[c].numa_node >= 0) {
      d.numa_node = m.cores[c].numa_node;
      break;
    }
  }
  return d;
}

hwloc_obj_t PciParent(hwloc_obj_t osdev) {
  hwloc_obj_t p = osdev->parent;
  return p != nullptr && p->type == HWLOC_OBJ_PCI_DEVICE ? p : nullptr;
}

// The GPUs in CUDA ordinal order: hwloc's CUDA devices when its CUDA plugin ran,
// else its NVML devices, else NVIDIA display controllers in PCI bus order (CUDA's
// order on servers with one GPU model), narrowed by CUDA_VISIBLE_DEVICES.
void DiscoverGpus(hwloc_topology_t topo, bool live, MachineTopology* m) {
  for (const char* prefix : {"cuda", "nvml"}) {
    for (hwloc_obj_t os = hwloc_get_next_osdev(topo, nullptr); os != nullptr;
         os = hwloc_get_next_osdev(topo, os)) {
      hwloc_obj_t pci = PciParent(os);
      if (pci == nullptr || os->name == nullptr || std::strncmp(os->name, prefix, 4) != 0) continue;
      TopologyDevice d = Describe(*m, topo, pci, os->name);
      const char* model = hwloc_obj_get_info_by_name(os, "GPUModel");
      if (model != nullptr) d.model = model;
      m->gpus.push_back(std::move(d));
    }
    if (!m->gpus.empty()) return;  // hwloc numbers them in ordinal order
  }
  std::vector<hwloc_obj_t> pcis;
  for (hwloc_obj_t pci = hwloc_get_next_pcidev(topo, nullptr); pci != nullptr;
       pci = hwloc_get_next_pcidev(topo, pci)) {
    const unsigned cls = pci->attr->pcidev.class_id;
    if (pci->attr->pcidev.vendor_id == kNvidiaVendor && (cls == 0x0300 || cls == 0x0302))
      pcis.push_back(pci);
  }
  std::sort(pcis.begin(), pcis.end(),
            [](hwloc_obj_t a, hwloc_obj_t b) { return BusId(a) < BusId(b); });
  std::vector<hwloc_obj_t> visible = pcis;
  const char* list = live ? std::getenv("CUDA_VISIBLE_DEVICES") : nullptr;
  if (list != nullptr) {
    visible.clear();
    for (const char* p = list; *p != '\0';) {
      char* end = nullptr;
      const long i = std::strtol(p, &end, 10);
      if (end == p || i < 0) {  // a UUID or MIG name: cannot map through PCI
        BRAID_LOG(Warning) << "placement: CUDA_VISIBLE_DEVICES='" << list
                           << "' is not a list of ordinals; GPUs are taken in PCI order";
        visible = pcis;
        break;
      }
      if (i >= static_cast<long>(pcis.size())) break;  // CUDA stops at the first invalid one
      visible.push_back(pcis[i]);
      p = *end == ',' ? end + 1 : end;
    }
  }
  for (hwloc_obj_t pci : visible) {
    TopologyDevice d = Describe(*m, topo, pci, BusId(pci));
    m->gpus.push_back(std::move(d));
  }
}

// One NIC per PCI device that has a network or OpenFabrics OS device, named by
// the OpenFabrics device when there is one ("mlx5_0"), else the interface.
void DiscoverNics(hwloc_topology_t topo, MachineTopology* m) {
  std::vector<std::pair<hwloc_obj_t, std::string>> found;
  for (hwloc_obj_t os = hwloc_get_next_osdev(topo, nullptr); os != nullptr;
       os = hwloc_get_next_osdev(topo, os)) {
    const auto type = os->attr->osdev.type;
    if (type != HWLOC_OBJ_OSDEV_NETWORK && type != HWLOC_OBJ_OSDEV_OPENFABRICS) continue;
    hwloc_obj_t pci = PciParent(os);
    if (pci == nullptr || os->name == nullptr) continue;
    auto it =
        std::find_if(found.begin(), found.end(), [&](const auto& f) { return f.first == pci; });
    if (it == found.end())
      found.emplace_back(pci, os->name);
    else if (type == HWLOC_OBJ_OSDEV_OPENFABRICS)
      it->second = os->name;
  }
  for (const auto& [pci, name] : found) m->nics.push_back(Describe(*m, topo, pci, name));
}

Status Loaded(hwloc_topology_t topo, const std::string& source, bool with_io) {
  if (with_io && hwloc_topology_set_io_types_filter(topo, HWLOC_TYPE_FILTER_KEEP_IMPORTANT) != 0)
    return Internal("hwloc refused the I/O filter");
  int rc = 0;
  if (source.rfind(kSyntheticPrefix, 0) == 0) {
    rc = hwloc_topology_set_synthetic(topo, source.c_str() + std::strlen(kSyntheticPrefix));
    if (rc != 0)
      return InvalidArgument("hwloc cannot read the synthetic topology '" + source + "'");
  } else if (!source.empty()) {
    if (access(source.c_str(), R_OK) != 0)
      return InvalidArgument("BRAID_TOPOLOGY_FILE='" + source + "': " + std::strerror(errno));
    if (hwloc_topology_set_xml(topo, source.c_str()) != 0)
      return InvalidArgument("hwloc cannot use the XML file '" + source + "'");
  }
  if (hwloc_topology_load(topo) != 0) {
    return InvalidArgument("hwloc cannot load the topology " +
                           (source.empty() ? std::string("of this machine") : "'" + source + "'") +
                           ": " + std::strerror(errno));
  }
  return Status::OK();
}

}  // namespace

struct Topology::Impl {
  hwloc_topology_t planned = nullptr;  // what placement reads
  hwloc_topology_t live = nullptr;     // what binding uses (planned when it is this machine)
  MachineTopology machine;
  ~Impl() {
    if (live != nullptr && live != planned) hwloc_topology_destroy(live);
    if (planned != nullptr) hwloc_topology_destroy(planned);
  }
};

bool TopologySupported() {
  return true;
}

Status Topology::Load(const std::string& source, std::unique_ptr<Topology>* out) {
  auto impl = std::make_unique<Impl>();
  if (hwloc_topology_init(&impl->planned) != 0) return Internal("hwloc_topology_init failed");
  BRAID_RETURN_IF_ERROR(Loaded(impl->planned, source, true));
  MachineTopology& m = impl->machine;
  const bool file = !source.empty() && source.rfind(kSyntheticPrefix, 0) != 0;
  hwloc_obj_t root = hwloc_get_root_obj(impl->planned);
  const char* host = hwloc_obj_get_info_by_name(root, "HostName");
  m.host = source.empty() || host == nullptr ? ThisHost() : host;
  m.source = source.empty() ? "this machine" : file ? "file " + source : source;
  // A file saved on this host describes it: binding then works from its os indexes.
  m.is_this_machine = source.empty() || (file && m.host == ThisHost());
  DiscoverCpus(impl->planned, &m);
  DiscoverGpus(impl->planned, source.empty(), &m);
  DiscoverNics(impl->planned, &m);
  if (m.cores.empty()) return InvalidArgument("the topology (" + m.source + ") has no cores");
  if (source.empty()) {
    impl->live = impl->planned;
  } else if (m.is_this_machine) {
    if (hwloc_topology_init(&impl->live) != 0) return Internal("hwloc_topology_init failed");
    BRAID_RETURN_IF_ERROR(Loaded(impl->live, "", false));
  }
  out->reset(new Topology(std::move(impl)));
  return Status::OK();
}

Topology::Topology(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Topology::~Topology() = default;

const MachineTopology& Topology::machine() const {
  return impl_->machine;
}

namespace {

Status NeedsLive(hwloc_topology_t live, const std::string& what) {
  if (live != nullptr) return Status::OK();
  return InvalidArgument("cannot " + what + ": the topology describes another machine");
}

Status Cpus(hwloc_topology_t live, int flags, std::vector<int>* cpus) {
  BRAID_RETURN_IF_ERROR(NeedsLive(live, "read the binding"));
  Bitmap set;
  if (hwloc_get_cpubind(live, set.map, flags) != 0)
    return BackendError(std::string("hwloc_get_cpubind: ") + std::strerror(errno));
  *cpus = Indexes(set.map);
  return Status::OK();
}

Status Bind(hwloc_topology_t live, const std::vector<int>& cpus, int flags, const char* who) {
  BRAID_RETURN_IF_ERROR(NeedsLive(live, "bind"));
  Bitmap set;
  Fill(cpus, set.map);
  if (hwloc_set_cpubind(live, set.map, flags) != 0) {
    return BackendError(std::string("cannot bind the ") + who + " to CPUs " + FormatCpuList(cpus) +
                        ": " + std::strerror(errno));
  }
  return Status::OK();
}

}  // namespace

Status Topology::ProcessCpus(std::vector<int>* cpus) const {
  return Cpus(impl_->live, HWLOC_CPUBIND_PROCESS, cpus);
}

Status Topology::ThreadCpus(std::vector<int>* cpus) const {
  return Cpus(impl_->live, HWLOC_CPUBIND_THREAD, cpus);
}

Status Topology::BindProcess(const std::vector<int>& cpus) const {
  return Bind(impl_->live, cpus, HWLOC_CPUBIND_PROCESS, "process");
}

Status Topology::BindThread(const std::vector<int>& cpus) const {
  return Bind(impl_->live, cpus, HWLOC_CPUBIND_THREAD, "thread");
}

Status Topology::BindMemory(void* data, size_t bytes, int numa_node) const {
  BRAID_RETURN_IF_ERROR(NeedsLive(impl_->live, "bind memory"));
  if (data == nullptr || bytes == 0) return Status::OK();
  Bitmap nodes;
  hwloc_bitmap_only(nodes.map, static_cast<unsigned>(numa_node));
  const int flags = HWLOC_MEMBIND_BYNODESET | HWLOC_MEMBIND_MIGRATE;
  if (hwloc_set_area_membind(impl_->live, data, bytes, nodes.map, HWLOC_MEMBIND_BIND, flags) != 0) {
    return BackendError("cannot place " + std::to_string(bytes) + " bytes on NUMA node " +
                        std::to_string(numa_node) + ": " + std::strerror(errno));
  }
  return Status::OK();
}

Status Topology::MemoryNodes(const void* data, size_t bytes, std::vector<int>* nodes) const {
  BRAID_RETURN_IF_ERROR(NeedsLive(impl_->live, "locate memory"));
  Bitmap set;
  if (hwloc_get_area_memlocation(impl_->live, data, bytes, set.map, HWLOC_MEMBIND_BYNODESET) != 0)
    return BackendError(std::string("hwloc_get_area_memlocation: ") + std::strerror(errno));
  *nodes = Indexes(set.map);
  return Status::OK();
}

}  // namespace braid
