// DeviceOps for one CUDA device: a non-blocking stream of its own, the batched
// scaled-copy kernel, device memory from cudaMalloc, and a persistent fusion buffer
// that grows to the largest group.
//
// Threading: one thread at a time (DeviceOps's contract).
#pragma once

#include <cuda_runtime_api.h>

#include <memory>

#include "collectives/cuda/batched_copy.h"
#include "collectives/cuda/device_memory.h"
#include "collectives/device_ops.h"

namespace braid {
namespace cuda {

class CudaDeviceOps : public DeviceOps {
 public:
  static Status Create(int device, std::unique_ptr<DeviceOps>* out);
  ~CudaDeviceOps() override;
  CudaDeviceOps(const CudaDeviceOps&) = delete;
  CudaDeviceOps& operator=(const CudaDeviceOps&) = delete;

  int device() const override { return device_; }
  void* stream() const override { return stream_; }
  Status WaitFor(const void* ready, void* producer) override;
  Status Synchronize() override;
  Status ScaledCopies(const std::vector<DeviceCopy>& copies, DataType dtype, double factor,
                      int64_t divisor) override;
  Status Allocate(int64_t bytes, bool zero, std::shared_ptr<void>* memory) override;
  Status FusionBuffer(int64_t bytes, void** data) override;
  Status Zero(void* data, int64_t bytes) override;
  Status ScatterAdd(void* dense, int64_t length, int64_t row, DataType dtype, const void* indices,
                    DataType index_dtype, const void* values, int64_t count,
                    double factor) override;
  Status FindIndexOutOfRange(const void* indices, DataType index_dtype, int64_t count,
                             int64_t length, int64_t* position, int64_t* value) override;
  // The kernel of cuda/mix.h on stream(), after the work queued so far on
  // `args.stream` when that is another stream (the inputs' producer; null: none).
  Status Mix(const MixArgs& args) override;

 private:
  CudaDeviceOps(int device, std::unique_ptr<BatchedCopier> copier)
      : device_(device), copier_(std::move(copier)) {}
  Status Init();

  int device_;
  std::unique_ptr<BatchedCopier> copier_;
  std::unique_ptr<DeviceBuffer> fusion_;
  std::unique_ptr<DeviceBuffer> check_;  // the index check's answer (one word)
  cudaStream_t stream_ = nullptr;
  cudaEvent_t producer_reached_ = nullptr;  // ordering only
  cudaEvent_t done_ = nullptr;              // blocking sync: the host sleeps on it
};

}  // namespace cuda
}  // namespace braid
