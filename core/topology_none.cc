// Topology in a build without hwloc: nothing can be discovered or bound, and
// every caller is told why.
#include "core/topology.h"

namespace braid {

struct Topology::Impl {};

bool TopologySupported() {
  return false;
}

Status Topology::Load(const std::string& source, std::unique_ptr<Topology>* out) {
  (void)source;
  (void)out;
  return InvalidArgument(
      "this build of braid has no hwloc (BRAID_WITH_HWLOC=OFF, or hwloc was not found): "
      "placement is not available; install hwloc (Debian: libhwloc-dev) and rebuild");
}

Topology::Topology(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Topology::~Topology() = default;

const MachineTopology& Topology::machine() const {
  static const MachineTopology none;
  return none;
}

namespace {
Status Unsupported() {
  return InvalidArgument("this build of braid has no hwloc");
}
}  // namespace

Status Topology::ProcessCpus(std::vector<int>*) const {
  return Unsupported();
}
Status Topology::ThreadCpus(std::vector<int>*) const {
  return Unsupported();
}
Status Topology::BindProcess(const std::vector<int>&) const {
  return Unsupported();
}
Status Topology::BindThread(const std::vector<int>&) const {
  return Unsupported();
}
Status Topology::BindMemory(void*, size_t, int) const {
  return Unsupported();
}
Status Topology::MemoryNodes(const void*, size_t, std::vector<int>*) const {
  return Unsupported();
}

}  // namespace braid
