#include "collectives/cuda/cuda_device_ops.h"

#include "collectives/cuda/cuda_check.h"
#include "collectives/cuda/mix.h"
#include "collectives/cuda/scatter_add.h"

namespace braid {
namespace cuda {

Status CudaDeviceOps::Create(int device, std::unique_ptr<DeviceOps>* out) {
  std::unique_ptr<BatchedCopier> copier;
  BRAID_RETURN_IF_ERROR(BatchedCopier::Create(device, &copier));
  std::unique_ptr<CudaDeviceOps> ops(new CudaDeviceOps(device, std::move(copier)));
  BRAID_RETURN_IF_ERROR(ops->Init());
  *out = std::move(ops);
  return Status::OK();
}

Status CudaDeviceOps::Init() {
  DeviceGuard guard(device_);
  BRAID_CHECK_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  BRAID_CHECK_CUDA(cudaEventCreateWithFlags(&producer_reached_, cudaEventDisableTiming));
  BRAID_CHECK_CUDA(
      cudaEventCreateWithFlags(&done_, cudaEventBlockingSync | cudaEventDisableTiming));
  return Status::OK();
}

CudaDeviceOps::~CudaDeviceOps() {
  DeviceGuard guard(device_);
  if (stream_ != nullptr) (void)cudaStreamSynchronize(stream_);
  fusion_.reset();
  if (done_ != nullptr) (void)cudaEventDestroy(done_);
  if (producer_reached_ != nullptr) (void)cudaEventDestroy(producer_reached_);
  if (stream_ != nullptr) (void)cudaStreamDestroy(stream_);
}

Status CudaDeviceOps::WaitFor(const void* ready, void* producer) {
  DeviceGuard guard(device_);
  cudaEvent_t event = static_cast<cudaEvent_t>(const_cast<void*>(ready));
  if (event == nullptr) {
    if (producer == stream_) return Status::OK();
    BRAID_CHECK_CUDA(cudaEventRecord(producer_reached_, static_cast<cudaStream_t>(producer)));
    event = producer_reached_;
  }
  BRAID_CHECK_CUDA(cudaStreamWaitEvent(stream_, event, 0));
  return Status::OK();
}

Status CudaDeviceOps::Synchronize() {
  DeviceGuard guard(device_);
  BRAID_CHECK_CUDA(cudaEventRecord(done_, stream_));
  BRAID_CHECK_CUDA(cudaEventSynchronize(done_));
  return Status::OK();
}

Status CudaDeviceOps::ScaledCopies(const std::vector<DeviceCopy>& copies, DataType dtype,
                                   double factor, int64_t divisor) {
  std::vector<CopyEntry> entries;
  entries.reserve(copies.size());
  for (const DeviceCopy& c : copies) entries.push_back(CopyEntry{c.src, c.dst, c.count});
  Scaling scaling;
  scaling.factor = factor;
  scaling.divisor = divisor;
  return copier_->Copy(entries, dtype, scaling, stream_);
}

Status CudaDeviceOps::Allocate(int64_t bytes, bool zero, std::shared_ptr<void>* memory) {
  std::unique_ptr<DeviceBuffer> buffer;
  BRAID_RETURN_IF_ERROR(DeviceBuffer::Create(device_, bytes, &buffer));
  if (zero && bytes > 0) {
    DeviceGuard guard(device_);
    BRAID_CHECK_CUDA(cudaMemsetAsync(buffer->data(), 0, static_cast<size_t>(bytes), stream_));
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

Status CudaDeviceOps::Zero(void* data, int64_t bytes) {
  if (bytes <= 0) return Status::OK();
  DeviceGuard guard(device_);
  BRAID_CHECK_CUDA(cudaMemsetAsync(data, 0, static_cast<size_t>(bytes), stream_));
  return Status::OK();
}

Status CudaDeviceOps::ScatterAdd(void* dense, int64_t length, int64_t row, DataType dtype,
                                 const void* indices, DataType index_dtype, const void* values,
                                 int64_t count, double factor) {
  DeviceGuard guard(device_);
  return cuda::ScatterAdd(dense, length, row, dtype, indices, index_dtype, values, count, factor,
                          stream_);
}

Status CudaDeviceOps::FindIndexOutOfRange(const void* indices, DataType index_dtype, int64_t count,
                                          int64_t length, int64_t* position, int64_t* value) {
  *position = -1;
  if (count <= 0) return Status::OK();
  if (!check_) BRAID_RETURN_IF_ERROR(DeviceBuffer::Create(device_, sizeof(uint64_t), &check_));
  DeviceGuard guard(device_);
  auto* first = static_cast<unsigned long long*>(check_->data());
  BRAID_CHECK_CUDA(cudaMemsetAsync(first, 0xff, sizeof(*first), stream_));
  BRAID_RETURN_IF_ERROR(
      cuda::FindIndexOutOfRange(indices, index_dtype, count, length, first, stream_));
  unsigned long long found = 0;
  BRAID_CHECK_CUDA(cudaMemcpyAsync(&found, first, sizeof(found), cudaMemcpyDeviceToHost, stream_));
  BRAID_RETURN_IF_ERROR(Synchronize());
  if (found == ~0ull) return Status::OK();
  *position = static_cast<int64_t>(found);
  const size_t width = DataTypeSize(index_dtype);
  int64_t raw = 0;
  int32_t raw32 = 0;
  const char* at = static_cast<const char*>(indices) + *position * static_cast<int64_t>(width);
  BRAID_CHECK_CUDA(cudaMemcpy(width == 4 ? static_cast<void*>(&raw32) : static_cast<void*>(&raw),
                              at, width, cudaMemcpyDeviceToHost));
  *value = width == 4 ? raw32 : raw;
  return Status::OK();
}

Status CudaDeviceOps::Mix(const MixArgs& args) {
  if (args.stream != nullptr && args.stream != stream_) {
    BRAID_RETURN_IF_ERROR(WaitFor(nullptr, args.stream));
  }
  DeviceGuard guard(device_);
  return cuda::Mix(args, stream_);
}

}  // namespace cuda
}  // namespace braid
