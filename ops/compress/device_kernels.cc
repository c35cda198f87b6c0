#include "ops/compress/device_kernels.h"

#include <atomic>
#include <string>

#include "collectives/device_plane.h"

namespace braid::compress {
namespace {

std::atomic<const CompressDeviceKernels*> g_kernels{nullptr};

}  // namespace

void RegisterCompressDeviceKernels(const CompressDeviceKernels* kernels) {
  g_kernels.store(kernels, std::memory_order_release);
}

const CompressDeviceKernels* CompressDeviceKernelsOrNull() {
  return g_kernels.load(std::memory_order_acquire);
}

Status CompressDeviceKernelsFor(const char* op, int device, const CompressDeviceKernels** out) {
  const CompressDeviceKernels* k = CompressDeviceKernelsOrNull();
  Status loaded;
  if (k == nullptr) {
    // The kernels come with the CUDA plugin, which registers them when it loads
    // (normally at the first GPU collective, which may not have happened yet).
    DevicePlugin unused;
    loaded = LoadDevicePlugin(&unused);
    k = CompressDeviceKernelsOrNull();
  }
  if (k == nullptr) {
    return InvalidArgument(
        std::string("compress '") + op + "': the buffers are on " + DeviceName(device) +
        ", but no GPU kernels for the compress ops are available" +
        (loaded.ok() ? std::string() : " (" + loaded.message() + ")") + "; use host buffers");
  }
  *out = k;
  return Status::OK();
}

}  // namespace braid::compress
