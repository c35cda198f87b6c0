#include "collectives/cuda/cuda_device_ops.h"

#include <cuda_runtime_api.h>

#include "collectives/cuda/cuda_check.h"

namespace braid {
namespace cuda {

Status CudaDeviceOps::Create(int device, std::unique_ptr<DeviceOps>* out) {
  std::unique_ptr<BatchedCopier> copier;
  BRAID_RETURN_IF_ERROR(BatchedCopier::Create(device, &copier));
  out->reset(new CudaDeviceOps(device, std::move(copier)));
  return Status::OK();
}

Status CudaDeviceOps::ScaledCopies(const std::vector<DeviceCopy>& copies, DataType dtype,
                                   double factor, int64_t divisor, void* stream) {
  std::vector<CopyEntry> entries;
  entries.reserve(copies.size());
  for (const DeviceCopy& c : copies) entries.push_back(CopyEntry{c.src, c.dst, c.count});
  Scaling scaling;
  scaling.factor = factor;
  scaling.divisor = divisor;
  return copier_->Copy(entries, dtype, scaling, static_cast<cudaStream_t>(stream));
}

Status CudaDeviceOps::Allocate(int64_t bytes, bool zero, std::shared_ptr<void>* memory) {
  std::unique_ptr<DeviceBuffer> buffer;
  BRAID_RETURN_IF_ERROR(DeviceBuffer::Create(device_, bytes, &buffer));
  if (zero && bytes > 0) {
    DeviceGuard guard(device_);
    // On the legacy default stream: a stand-in's BufferView names no stream, so the
    // backend orders its collective after this.
    BRAID_CHECK_CUDA(cudaMemsetAsync(buffer->data(), 0, static_cast<size_t>(bytes), nullptr));
  }
  std::shared_ptr<DeviceBuffer> owned(std::move(buffer));
  *memory = std::shared_ptr<void>(owned, owned->data());
  return Status::OK();
}

Status CudaDeviceOps::FusionBuffer(int64_t bytes, void** data) {
  if (!fusion_ || fusion_->bytes() < bytes) {
    fusion_.reset();  // free the old one first: the device may be short of memory
    BRAID_RETURN_IF_ERROR(DeviceBuffer::Create(device_, bytes, &fusion_));
  }
  *data = fusion_->data();
  return Status::OK();
}

}  // namespace cuda
}  // namespace braid
