// The decentralized SGD op's GPU kernels (local_step.cu): the local momentum step
// and the squared distance of the consensus distance. The .cu file is built into
// the CUDA plugin library, whose loading registers the table below
// (device_kernels.h); libbraid has no CUDA code of its own.
#pragma once

#include "ops/gossip/device_kernels.h"

namespace braid::gossip::cuda {

// The kernels as a registration table; static storage.
const GossipDeviceKernels* CudaGossipKernels();

}  // namespace braid::gossip::cuda
