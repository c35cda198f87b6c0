// The executor runs the agreed responses on this rank: it takes the matching
// requests out of the pending table, packs fused groups into the persistent fusion
// buffer, calls the backend, unpacks, applies averaging and scale factors, and
// completes the handles. On a joined rank it stands in for the names this rank
// did not submit: zeros into a scratch allreduce, zero rows into an allgather, a
// barrier with nothing to release.
//
// Threading: coordinator thread only.
#pragma once

#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include "collectives/transport.h"
#include "core/buffer_pool.h"
#include "core/fusion.h"
#include "core/request.h"
#include "core/tensor_queue.h"
#include "core/timeline.h"

namespace braid {

class Executor {
 public:
  Executor(Transport* transport, int64_t fusion_threshold_bytes, Timeline* timeline);

  // Runs `responses` in order. `negotiation_start` maps names to the time the
  // coordinator first saw them (filled only when a timeline is written). `joined`:
  // this rank has joined and stands in for the responses it has no request for.
  void Execute(const std::vector<Response>& responses,
               std::unordered_map<std::string, Clock::time_point>* negotiation_start,
               TensorQueue* queue, bool joined);

 private:
  bool StandIn(const Response& agreed, Request* request,
               std::vector<std::shared_ptr<void>>* scratch);
  Backend* BackendFor(const Response& agreed, const std::vector<Request>& requests, Status* status);
  void RunGroup(const std::vector<Response>& responses, const FusionGroup& group,
                std::vector<Request>* requests);
  Status Allreduce(const Response& agreed, Backend* backend, std::vector<Request>* requests);
  Status Allgather(const Response& agreed, Backend* backend, Request* request);
  Status Broadcast(Backend* backend, Request* request);
  // The same on device memory (executor_device.cc): copies and scaling run on the
  // device plane's stream through `ops`, after the tensors' ready events.
  Status AllreduceOnDevice(const Response& agreed, Backend* backend, DeviceOps* ops,
                           std::vector<Request>* requests);
  Status AllgatherOnDevice(const Response& agreed, Backend* backend, DeviceOps* ops,
                           Request* request);
  Status BroadcastOnDevice(Backend* backend, DeviceOps* ops, Request* request);
  void Finish(Request* request, const Status& status);
  void Trace(const std::vector<Request>& requests, const char* phase, Clock::time_point start,
             Clock::time_point end);

  Transport* transport_;
  int world_size_;
  int64_t fusion_threshold_bytes_;
  Timeline* timeline_;
  PrefaultedBuffer fusion_buffer_;
  std::shared_ptr<BufferPool> output_pool_;
  // The GPU this rank's own tensors were last on (kCpuDevice: none yet), where a
  // joined rank stands in for GPU collectives.
  int gpu_device_ = kCpuDevice;
};

}  // namespace braid
