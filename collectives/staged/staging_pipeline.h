// The staging pipeline of the host-staged backend: two copy streams on one device,
// a persistent pinned host buffer, and the segment-by-segment allreduce that
// overlaps device-to-host copies, the host collective and host-to-device copies.
//
//   to_host stream:   [D2H 0][D2H 1][D2H 2]...
//   host thread:             [reduce 0][reduce 1][reduce 2]...
//   to_device stream:                  [H2D 0]   [H2D 1]   [H2D 2]
//
// The host waits for each segment's device-to-host copy on an event created with
// cudaEventBlockingSync: the driver wakes the thread, nothing spins.
//
// Threading: one thread at a time.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "collectives/backend.h"
#include "collectives/cuda/device_memory.h"
#include "common/status.h"
#include "common/types.h"

namespace braid {
namespace staged {

class StagingPipeline {
 public:
  static Status Create(int device, int64_t segment_bytes, std::unique_ptr<StagingPipeline>* out);
  ~StagingPipeline();
  StagingPipeline(const StagingPipeline&) = delete;
  StagingPipeline& operator=(const StagingPipeline&) = delete;

  int device() const { return device_; }
  cudaStream_t to_host() const { return to_host_; }
  cudaStream_t to_device() const { return to_device_; }

  // The to_host stream waits for the work queued so far on `producer` (null: the
  // legacy default stream).
  Status OrderAfter(void* producer);
  // The to_device stream waits for the work queued so far on the to_host stream.
  Status DeviceAfterHost();

  // A pinned host buffer of at least `bytes`, kept for later calls (its contents
  // are not preserved when it grows).
  Status HostBuffer(int64_t bytes, char** host);

  // Reduces `count` elements at `data` (device memory) in place across the host
  // backend's ranks: segment by segment through the pinned buffer, with
  // `host->Allreduce` on each segment. Every segment's host collective runs even
  // after a CUDA failure (the ranks stay in step); the first error is returned.
  // The last host-to-device copy is queued, not waited for (see Finish).
  Status Allreduce(Backend* host, void* data, int64_t count, DataType dtype, ReduceOp op);

  // Queues a copy of `bytes` from device to host on the to_host stream and waits
  // for it.
  Status CopyToHost(const void* device_src, void* host_dst, int64_t bytes);
  // The same without the wait, for several copies waited for together.
  Status QueueToHost(const void* device_src, void* host_dst, int64_t bytes);
  // Waits (blocking) until the to_host stream has finished everything queued so far.
  Status WaitToHost();
  // Queues a copy of `bytes` from host to device on the to_device stream.
  Status CopyToDevice(const void* host_src, void* device_dst, int64_t bytes);

  // Waits (blocking) until both streams have finished everything queued so far.
  Status Finish();

 private:
  StagingPipeline(int device, int64_t segment_bytes)
      : device_(device), segment_bytes_(segment_bytes) {}
  Status Init();
  Status SegmentEvents(size_t n);
  Status WaitFor(cudaEvent_t event, cudaStream_t stream);

  int device_;
  int64_t segment_bytes_;
  cudaStream_t to_host_ = nullptr;
  cudaStream_t to_device_ = nullptr;
  cudaEvent_t producer_ready_ = nullptr;     // ordering only (no timing, no wait)
  cudaEvent_t host_copied_ = nullptr;        // to_host reached a point: to_device waits
  cudaEvent_t done_ = nullptr;               // blocking sync
  std::vector<cudaEvent_t> segment_copied_;  // blocking sync, one per segment
  std::unique_ptr<cuda::PinnedBuffer> pinned_;
};

}  // namespace staged
}  // namespace braid
