#include "ops/gossip/device_kernels.h"

#include <atomic>

namespace braid::gossip {
namespace {

std::atomic<const GossipDeviceKernels*> g_kernels{nullptr};

}  // namespace

void RegisterGossipDeviceKernels(const GossipDeviceKernels* kernels) {
  g_kernels.store(kernels, std::memory_order_release);
}

const GossipDeviceKernels* GossipDeviceKernelsOrNull() {
  return g_kernels.load(std::memory_order_acquire);
}

}  // namespace braid::gossip
