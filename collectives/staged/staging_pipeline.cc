#include "collectives/staged/staging_pipeline.h"

#include <algorithm>

#include "collectives/cuda/cuda_check.h"

namespace braid {
namespace staged {
namespace {

constexpr unsigned kWaitedEvent = cudaEventBlockingSync | cudaEventDisableTiming;

}  // namespace

Status StagingPipeline::Create(int device, int64_t segment_bytes,
                               std::unique_ptr<StagingPipeline>* out) {
  if (segment_bytes <= 0) return InvalidArgument("staged: segment size must be positive");
  std::unique_ptr<StagingPipeline> pipeline(new StagingPipeline(device, segment_bytes));
  BRAID_RETURN_IF_ERROR(pipeline->Init());
  *out = std::move(pipeline);
  return Status::OK();
}

Status StagingPipeline::Init() {
  cuda::DeviceGuard guard(device_);
  BRAID_CHECK_CUDA(cudaSetDevice(device_));
  BRAID_CHECK_CUDA(cudaStreamCreateWithFlags(&to_host_, cudaStreamNonBlocking));
  BRAID_CHECK_CUDA(cudaStreamCreateWithFlags(&to_device_, cudaStreamNonBlocking));
  BRAID_CHECK_CUDA(cudaEventCreateWithFlags(&producer_ready_, cudaEventDisableTiming));
  BRAID_CHECK_CUDA(cudaEventCreateWithFlags(&host_copied_, cudaEventDisableTiming));
  BRAID_CHECK_CUDA(cudaEventCreateWithFlags(&done_, kWaitedEvent));
  return cuda::PinnedBuffer::Create(0, &pinned_);
}

StagingPipeline::~StagingPipeline() {
  cuda::DeviceGuard guard(device_);
  if (to_host_ != nullptr) (void)cudaStreamSynchronize(to_host_);
  if (to_device_ != nullptr) (void)cudaStreamSynchronize(to_device_);
  for (cudaEvent_t e : segment_copied_) (void)cudaEventDestroy(e);
  for (cudaEvent_t e : {producer_ready_, host_copied_, done_}) {
    if (e != nullptr) (void)cudaEventDestroy(e);
  }
  for (cudaStream_t s : {to_host_, to_device_}) {
    if (s != nullptr) (void)cudaStreamDestroy(s);
  }
}

Status StagingPipeline::OrderAfter(void* producer) {
  cuda::DeviceGuard guard(device_);
  BRAID_CHECK_CUDA(cudaEventRecord(producer_ready_, static_cast<cudaStream_t>(producer)));
  BRAID_CHECK_CUDA(cudaStreamWaitEvent(to_host_, producer_ready_, 0));
  return Status::OK();
}

Status StagingPipeline::DeviceAfterHost() {
  cuda::DeviceGuard guard(device_);
  BRAID_CHECK_CUDA(cudaEventRecord(host_copied_, to_host_));
  BRAID_CHECK_CUDA(cudaStreamWaitEvent(to_device_, host_copied_, 0));
  return Status::OK();
}

Status StagingPipeline::HostBuffer(int64_t bytes, char** host) {
  if (pinned_->bytes() < bytes) {
    // Nothing queued may still use the old buffer when it is freed.
    BRAID_RETURN_IF_ERROR(Finish());
    pinned_.reset();
    BRAID_RETURN_IF_ERROR(cuda::PinnedBuffer::Create(bytes, &pinned_));
  }
  *host = static_cast<char*>(pinned_->data());
  return Status::OK();
}

Status StagingPipeline::SegmentEvents(size_t n) {
  cuda::DeviceGuard guard(device_);
  while (segment_copied_.size() < n) {
    cudaEvent_t event = nullptr;
    BRAID_CHECK_CUDA(cudaEventCreateWithFlags(&event, kWaitedEvent));
    segment_copied_.push_back(event);
  }
  return Status::OK();
}

Status StagingPipeline::WaitFor(cudaEvent_t event, cudaStream_t stream) {
  BRAID_CHECK_CUDA(cudaEventRecord(event, stream));
  BRAID_CHECK_CUDA(cudaEventSynchronize(event));
  return Status::OK();
}

Status StagingPipeline::Allreduce(Backend* host, void* data, int64_t count, DataType dtype,
                                  ReduceOp op) {
  const int64_t elem = static_cast<int64_t>(DataTypeSize(dtype));
  const int64_t per_segment = std::max<int64_t>(1, segment_bytes_ / elem);
  const int64_t segments = (count + per_segment - 1) / per_segment;
  char* staging = nullptr;
  BRAID_RETURN_IF_ERROR(HostBuffer(count * elem, &staging));
  BRAID_RETURN_IF_ERROR(SegmentEvents(static_cast<size_t>(segments)));
  char* device_data = static_cast<char*>(data);
  cuda::DeviceGuard guard(device_);
  // A CUDA failure is remembered, not returned, until every segment's host
  // collective has run: the other ranks are waiting in them.
  Status first_error;
  auto note = [&first_error](const Status& s) {
    if (first_error.ok() && !s.ok()) first_error = s;
  };
  auto queue_to_host = [&](int64_t offset, int64_t bytes, cudaEvent_t copied) -> Status {
    BRAID_CHECK_CUDA(cudaMemcpyAsync(staging + offset, device_data + offset,
                                     static_cast<size_t>(bytes), cudaMemcpyDeviceToHost, to_host_));
    BRAID_CHECK_CUDA(cudaEventRecord(copied, to_host_));
    return Status::OK();
  };
  for (int64_t s = 0; s < segments; ++s) {
    const int64_t first = s * per_segment, n = std::min(per_segment, count - first);
    note(queue_to_host(first * elem, n * elem, segment_copied_[s]));
  }
  for (int64_t s = 0; s < segments; ++s) {
    const int64_t first = s * per_segment, n = std::min(per_segment, count - first);
    if (first_error.ok()) {
      const cudaError_t rc = cudaEventSynchronize(segment_copied_[s]);
      if (rc != cudaSuccess) note(cuda::CudaError(rc, "cudaEventSynchronize", __FILE__, __LINE__));
    }
    BufferView segment{staging + first * elem, n, dtype, kCpuDevice, nullptr};
    BRAID_RETURN_IF_ERROR(host->Allreduce(segment, op));
    if (first_error.ok()) note(CopyToDevice(segment.data, device_data + first * elem, n * elem));
  }
  return first_error;
}

Status StagingPipeline::CopyToHost(const void* device_src, void* host_dst, int64_t bytes) {
  if (bytes == 0) return Status::OK();
  BRAID_RETURN_IF_ERROR(QueueToHost(device_src, host_dst, bytes));
  return WaitToHost();
}

Status StagingPipeline::QueueToHost(const void* device_src, void* host_dst, int64_t bytes) {
  if (bytes == 0) return Status::OK();
  cuda::DeviceGuard guard(device_);
  BRAID_CHECK_CUDA(cudaMemcpyAsync(host_dst, device_src, static_cast<size_t>(bytes),
                                   cudaMemcpyDeviceToHost, to_host_));
  return Status::OK();
}

Status StagingPipeline::WaitToHost() {
  cuda::DeviceGuard guard(device_);
  return WaitFor(done_, to_host_);
}

Status StagingPipeline::CopyToDevice(const void* host_src, void* device_dst, int64_t bytes) {
  if (bytes == 0) return Status::OK();
  cuda::DeviceGuard guard(device_);
  BRAID_CHECK_CUDA(cudaMemcpyAsync(device_dst, host_src, static_cast<size_t>(bytes),
                                   cudaMemcpyHostToDevice, to_device_));
  return Status::OK();
}

Status StagingPipeline::Finish() {
  cuda::DeviceGuard guard(device_);
  BRAID_RETURN_IF_ERROR(WaitFor(done_, to_host_));
  return WaitFor(done_, to_device_);
}

}  // namespace staged
}  // namespace braid
