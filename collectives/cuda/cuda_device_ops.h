// DeviceOps for one CUDA device: the batched scaled-copy kernel, device memory from
// cudaMalloc, and a persistent fusion buffer that grows to the largest group.
//
// Threading: one thread at a time (DeviceOps's contract).
#pragma once

#include <memory>

#include "collectives/cuda/batched_copy.h"
#include "collectives/cuda/device_memory.h"
#include "collectives/device_ops.h"

namespace braid {
namespace cuda {

class CudaDeviceOps : public DeviceOps {
 public:
  static Status Create(int device, std::unique_ptr<DeviceOps>* out);

  int device() const override { return device_; }
  Status ScaledCopies(const std::vector<DeviceCopy>& copies, DataType dtype, double factor,
                      int64_t divisor, void* stream) override;
  Status Allocate(int64_t bytes, bool zero, std::shared_ptr<void>* memory) override;
  Status FusionBuffer(int64_t bytes, void** data) override;

 private:
  CudaDeviceOps(int device, std::unique_ptr<BatchedCopier> copier)
      : device_(device), copier_(std::move(copier)) {}

  int device_;
  std::unique_ptr<BatchedCopier> copier_;
  std::unique_ptr<DeviceBuffer> fusion_;
};

}  // namespace cuda
}  // namespace braid
