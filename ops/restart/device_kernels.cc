#include "ops/restart/device_kernels.h"

#include <atomic>

namespace braid::restart {
namespace {

std::atomic<const RestartDeviceKernels*> g_kernels{nullptr};

}  // namespace

void RegisterRestartDeviceKernels(const RestartDeviceKernels* kernels) {
  g_kernels.store(kernels, std::memory_order_release);
}

const RestartDeviceKernels* RestartDeviceKernelsOrNull() {
  return g_kernels.load(std::memory_order_acquire);
}

}  // namespace braid::restart
