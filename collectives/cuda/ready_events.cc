#include "collectives/cuda/ready_events.h"

#include <cuda_runtime_api.h>

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "collectives/cuda/cuda_check.h"
#include "collectives/cuda/device_memory.h"
#include "common/types.h"

namespace braid {
namespace cuda {
namespace {

// Free events by device (an event is recorded only on a stream of the device it
// was created on).
class EventPool {
 public:
  Status Acquire(int device, cudaEvent_t* out) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      std::vector<cudaEvent_t>& free = free_[device];
      if (!free.empty()) {
        *out = free.back();
        free.pop_back();
        return Status::OK();
      }
    }
    BRAID_CHECK_CUDA(cudaEventCreateWithFlags(out, cudaEventDisableTiming));
    return Status::OK();
  }

  void Release(int device, cudaEvent_t event) {
    std::lock_guard<std::mutex> lock(mu_);
    free_[device].push_back(event);
  }

 private:
  std::mutex mu_;
  std::map<int, std::vector<cudaEvent_t>> free_;
};

// Never destroyed: events may still be released while the process exits, when
// the CUDA runtime may already be gone.
EventPool& Pool() {
  static EventPool* pool = new EventPool;
  return *pool;
}

}  // namespace

Status RecordReadyEvent(int device, void* stream, std::shared_ptr<void>* event) {
  DeviceGuard guard(device);
  cudaEvent_t ready = nullptr;
  BRAID_RETURN_IF_ERROR(Pool().Acquire(device, &ready));
  const cudaError_t recorded = cudaEventRecord(ready, static_cast<cudaStream_t>(stream));
  if (recorded != cudaSuccess) {
    Pool().Release(device, ready);
    const Status error = CudaError(recorded, "cudaEventRecord(ready, stream)", __FILE__, __LINE__);
    return Status(error.code(), "the tensor's stream on " + DeviceName(device) +
                                    " cannot be waited for: " + error.message());
  }
  *event = std::shared_ptr<void>(static_cast<void*>(ready), [device](void* e) {
    Pool().Release(device, static_cast<cudaEvent_t>(e));
  });
  return Status::OK();
}

}  // namespace cuda
}  // namespace braid
