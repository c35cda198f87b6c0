// The restart ops' GPU kernels (slowmo_update.cu): the SlowMo pass of
// slowmo_update.h and the scaled copies that pack and unpack a restart's buffer.
// The .cu file is built into the CUDA plugin library, whose loading registers
// the table below (device_kernels.h); libbraid has no CUDA code of its own.
#pragma once

#include "ops/restart/device_kernels.h"

namespace braid::restart::cuda {

// The kernels as a registration table; static storage.
const RestartDeviceKernels* CudaRestartKernels();

}  // namespace braid::restart::cuda
