#include "ops/gossip/decentralized_buffers.h"

#include "collectives/device_plane.h"

namespace braid::gossip {

std::string OpPrefix(const std::string& name) {
  return "decentralized SGD '" + name + "': ";
}

Status CheckViews(const std::string& name, const char* what, const std::vector<BufferView>& views,
                  DataType dtype, int device) {
  for (size_t i = 0; i < views.size(); ++i) {
    const BufferView& v = views[i];
    const std::string which = OpPrefix(name) + what + " buffer " + std::to_string(i) + " ";
    if (v.dtype != DataType::kFloat32 && v.dtype != DataType::kFloat64) {
      return InvalidArgument(which + "is " + DataTypeName(v.dtype) +
                             "; the op takes float32 and float64 buffers");
    }
    if (v.count < 0 || (v.count > 0 && v.data == nullptr)) {
      return InvalidArgument(which + "has a null pointer or a negative count");
    }
    if (v.dtype != dtype || v.device != device) {
      return InvalidArgument(which + "is " + DataTypeName(v.dtype) + " on " + DeviceName(v.device) +
                             ", params[0] " + DataTypeName(dtype) + " on " + DeviceName(device) +
                             ": one op takes one dtype on one device (use one op per group)");
    }
  }
  return Status::OK();
}

Status CheckPaired(const std::string& name, const char* what, const std::vector<BufferView>& params,
                   const std::vector<BufferView>& others) {
  if (others.empty()) return Status::OK();
  if (others.size() != params.size()) {
    return InvalidArgument(OpPrefix(name) + std::to_string(others.size()) + " " + what +
                           " buffers for " + std::to_string(params.size()) +
                           " params (give one per parameter buffer, or none)");
  }
  for (size_t i = 0; i < params.size(); ++i) {
    if (others[i].count == params[i].count) continue;
    return InvalidArgument(OpPrefix(name) + what + " buffer " + std::to_string(i) + " has " +
                           std::to_string(others[i].count) + " elements, params buffer " +
                           std::to_string(i) + " " + std::to_string(params[i].count));
  }
  return Status::OK();
}

Status FindDeviceKernels(const std::string& name, int device, const GossipDeviceKernels** out) {
  const GossipDeviceKernels* k = GossipDeviceKernelsOrNull();
  Status loaded;
  if (k == nullptr) {
    // The kernels come with the CUDA plugin, which registers them when it loads
    // (normally at the first GPU collective, which may not have happened yet).
    DevicePlugin unused;
    loaded = LoadDevicePlugin(&unused);
    k = GossipDeviceKernelsOrNull();
  }
  if (k == nullptr) {
    return InvalidArgument(OpPrefix(name) + "the buffers are on " + DeviceName(device) +
                           ", but no GPU kernels for decentralized SGD are available" +
                           (loaded.ok() ? std::string() : " (" + loaded.message() + ")") +
                           "; use host buffers");
  }
  *out = k;
  return Status::OK();
}

}  // namespace braid::gossip
