// The executor runs the agreed responses on this rank: it takes the matching
// requests out of the pending table, packs fused groups into the persistent fusion
// buffer, calls the backend, unpacks, applies averaging and scale factors, and
// completes the handles. On a joined rank it stands in for the names this rank
// did not submit: zeros into a scratch allreduce, zero rows into an allgather, a
// barrier with nothing to release.
//
// Failures before a collective: what can fail on one rank alone (an allocation,
// the device plane's set-up, a copy on the device) happens before the collective
// and, where it can happen, is agreed on by every rank (collectives/agreement.h):
// for every GPU group and every allgather. If any rank failed, every rank fails
// the group with the same message and none runs the collective, so nobody waits
// for a rank that cannot come or finishes with memory it never filled. A host
// allreduce, broadcast or barrier has nothing that can fail before it, and pays
// no such round.
//
// Device planes: the first GPU group the ranks agreed on sets up every rank's
// plane, each on its own GPU named in the response (Response::devices).
//
// Threading: coordinator thread only.
#pragma once

#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include "collectives/sparse/sparse_memory.h"
#include "collectives/transport.h"
#include "core/buffer_pool.h"
#include "core/fusion.h"
#include "core/neighbor_plan.h"
#include "core/request.h"
#include "core/tensor_queue.h"
#include "core/timeline.h"
#include "core/watchdog.h"

namespace braid {

class Executor {
 public:
  // `watchdog` (not null) is told about every collective this rank waits in.
  Executor(Transport* transport, int64_t fusion_threshold_bytes, Timeline* timeline,
           Watchdog* watchdog);

  // False when the fusion buffer's address space could not be reserved.
  bool ok() const { return fusion_buffer_.ok(); }
  // The fusion buffer's reserved range, for placement (core/placement.h).
  char* fusion_buffer() const { return fusion_buffer_.reserved(); }
  int64_t fusion_buffer_bytes() const { return fusion_buffer_.capacity(); }

  // Runs `responses` in order. `negotiation_start` maps names to the time the
  // coordinator first saw them (filled only when a timeline is written). `joined`:
  // this rank has joined and stands in for the responses it has no request for.
  void Execute(const std::vector<Response>& responses,
               std::unordered_map<std::string, Clock::time_point>* negotiation_start,
               TensorQueue* queue, bool joined);

 private:
  // One fused group on this rank: its requests, the responses it stands in for
  // (joined), and what already failed here.
  struct Group {
    size_t count = 0;  // responses in the group
    std::vector<Request> requests;
    std::vector<const Response*> stand_ins;
    Status local;
  };
  void Collect(const std::vector<Response>& responses, const FusionGroup& fusion,
               std::unordered_map<std::string, Clock::time_point>* negotiation_start,
               TensorQueue* queue, bool joined, Group* group);
  Status StandIn(const Response& agreed, Request* request,
                 std::vector<std::shared_ptr<void>>* scratch);
  Status StandInOutput(const Response& agreed, Request* request,
                       std::vector<std::shared_ptr<void>>* scratch);
  Status SetUpDevicePlane(const Response& agreed);
  Backend* BackendFor(const Response& agreed, int device, Status* status);
  void RunGroup(const Response& agreed, Group* group);
  Status Run(const Response& agreed, Backend* backend, DeviceOps* ops, const Status& local,
             std::vector<Request>* requests);
  Status Agree(const Status& local);
  Status Allreduce(const Response& agreed, Backend* backend, std::vector<Request>* requests);
  Status Allgather(const Response& agreed, Backend* backend, const Status& local, Request* request);
  Status Broadcast(Backend* backend, Request* request);
  // The sparse collectives on host or device memory (executor_sparse.cc).
  Status Sparse(const Response& agreed, Backend* backend, DeviceOps* ops, const Status& local,
                std::vector<Request>* requests);
  SparseMemory* SparseMemoryFor(DeviceOps* ops);
  // The neighbour collectives on host or device memory (executor_neighbor.cc).
  Status Neighbor(const Response& agreed, Backend* backend, DeviceOps* ops, const Status& local,
                  std::vector<Request>* requests);
  // The kept send (which 0) or receive (which 1) area of at least `bytes`, on the
  // host (ops null) or on the device plane's GPU.
  Status NeighborArea(DeviceOps* ops, int which, int64_t bytes, void** data);
  Status PackNeighborSends(const NeighborPlan& plan, const std::vector<Request>& requests,
                           DeviceOps* ops, char* area);
  Status MixNeighbors(const NeighborPlan& plan, const std::vector<Request>& requests,
                      DeviceOps* ops, const char* recv_area);
  // The same on device memory (executor_device.cc): copies and scaling run on the
  // device plane's stream through `ops`, after the tensors' ready events.
  // Each takes what already failed here (`local`) into the ranks' agreement.
  Status AllreduceOnDevice(const Response& agreed, Backend* backend, DeviceOps* ops,
                           const Status& local, std::vector<Request>* requests);
  Status AllgatherOnDevice(const Response& agreed, Backend* backend, DeviceOps* ops,
                           const Status& local, Request* request);
  Status BroadcastOnDevice(const Response& agreed, Backend* backend, DeviceOps* ops,
                           const Status& local, Request* request);
  void Finish(Request* request, const Status& status);
  void Trace(const std::vector<Request>& requests, const char* phase, Clock::time_point start,
             Clock::time_point end);

  Transport* transport_;
  int rank_;
  int world_size_;
  int64_t fusion_threshold_bytes_;
  Timeline* timeline_;
  Watchdog* watchdog_;
  PrefaultedBuffer fusion_buffer_;
  std::shared_ptr<BufferPool> output_pool_;
  // Collect's requests for the group at hand, taken under one lock, and which of
  // the group's names this rank had pending.
  std::vector<Request> taken_requests_;
  std::vector<char> taken_;
  // Whether the first GPU group has set up this rank's device plane, and its GPU.
  bool device_plane_set_up_ = false;
  int plane_device_ = kCpuDevice;
  // The sparse collectives' memory (and persistent message buffers), host and GPU.
  std::unique_ptr<SparseMemory> host_sparse_;
  std::unique_ptr<SparseMemory> device_sparse_;
  DeviceOps* device_sparse_ops_ = nullptr;
  // The neighbour collectives' send and receive areas, host and GPU.
  struct Scratch {
    std::shared_ptr<void> memory;
    int64_t bytes = 0;
  };
  Scratch neighbor_host_[2];
  Scratch neighbor_device_[2];
  DeviceOps* neighbor_ops_ = nullptr;
};

// ops->stream() waits for the inputs of every request (executor_device.cc).
Status WaitForProducers(DeviceOps* ops, const std::vector<Request>& requests);

}  // namespace braid
