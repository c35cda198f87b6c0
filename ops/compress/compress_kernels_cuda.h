// The compress ops' GPU kernels (topk_select.cu, memory.cu) as the registration
// table of device_kernels.h. The .cu files are built into the CUDA plugin library,
// whose loading registers the table; libbraid has no CUDA code of its own.
//
// Threading: as device_kernels.h (the functions are reentrant; the table is
// built once, on first use).
#pragma once

#include "ops/compress/device_kernels.h"

namespace braid::compress::cuda {

// The kernels as a registration table; static storage.
const CompressDeviceKernels* CudaCompressKernels();

// The selection entries of the table (topk_select.cu), which memory.cu gathers
// into it.
Status TopK(int device, const DeviceValues& x, int64_t k, const DeviceSelectionOut& out,
            void* stream);
Status SampleKeys(int device, const DeviceValues& x, uint64_t seed, int64_t m, uint64_t* host_keys,
                  void* stream);
Status CountAtLeast(int device, const DeviceValues& x, uint64_t threshold, int64_t* count,
                    void* stream);
Status SelectAtLeast(int device, const DeviceValues& x, uint64_t threshold, int64_t candidates,
                     int64_t k, const DeviceSelectionOut& out, void* stream);

}  // namespace braid::compress::cuda
