#include "core/executor.h"

#include <algorithm>
#include <cstring>
#include <exception>

#include "collectives/agreement.h"
#include "collectives/cpu/reduce.h"
#include "common/guard.h"
#include "common/logging.h"
#include "core/reduce_plan.h"
#include "core/stage_times.h"
#include "core/stats.h"

namespace braid {
namespace {

// Allgather outputs kept for reuse after their handles are freed.
constexpr int64_t kMaxCachedOutputBytes = int64_t{1} << 30;

void PostProcess(const ReducePlan& plan, const Request& r, const void* reduced) {
  cpu::ScaleCopy(r.output, reduced, r.meta.NumElements(), r.meta.dtype, plan.postscale,
                 plan.integer_divisor);
}

// This rank's payload in one executed group (core/stats.h): for sparse tensors
// its values, and apart (IndexBytes) its indices.
int64_t PayloadBytes(const std::vector<Request>& requests) {
  int64_t bytes = 0;
  for (const Request& r : requests) {
    const int64_t elements = IsSparse(r.meta.collective) ? r.meta.pairs * SparseRowElements(r.meta)
                                                         : r.meta.NumElements();
    bytes += elements * static_cast<int64_t>(DataTypeSize(r.meta.dtype));
  }
  return bytes;
}

int64_t IndexBytes(const std::vector<Request>& requests) {
  int64_t bytes = 0;
  for (const Request& r : requests) {
    if (IsSparse(r.meta.collective))
      bytes += r.meta.pairs * static_cast<int64_t>(DataTypeSize(r.meta.index_dtype));
  }
  return bytes;
}

}  // namespace

Executor::Executor(Transport* transport, int64_t fusion_threshold_bytes, Timeline* timeline,
                   Watchdog* watchdog)
    : transport_(transport),
      rank_(transport->info().rank),
      world_size_(transport->info().size),
      fusion_threshold_bytes_(fusion_threshold_bytes),
      timeline_(timeline),
      watchdog_(watchdog),
      fusion_buffer_(fusion_threshold_bytes),
      output_pool_(BufferPool::Create(kMaxCachedOutputBytes)) {}

void Executor::Execute(const std::vector<Response>& responses,
                       std::unordered_map<std::string, Clock::time_point>* negotiation_start,
                       TensorQueue* queue, bool joined) {
  for (const FusionGroup& fusion : PlanFusion(responses, fusion_threshold_bytes_)) {
    Group group;
    group.count = fusion.count;
    Collect(responses, fusion, negotiation_start, queue, joined, &group);
    const Response& agreed = responses[fusion.first];
    // A rank that never submitted an errored name has nothing to fail.
    if (agreed.is_error() && group.requests.empty()) continue;
    try {
      RunGroup(agreed, &group);
    } catch (const std::exception& e) {
      // Not expected (what can fail is a Status); the callers must not wait forever.
      Status bug = Internal("'" + agreed.meta.name + "': internal error in braid: " + e.what());
      BRAID_LOG(Error) << bug.message();
      for (auto& r : group.requests) Finish(&r, bug);
    }
  }
}

// This rank's requests for the group, the names it stands in for (joined) and
// what already failed. Only requests this rank has negotiated are taken
// (TensorQueue::TakeGroup).
void Executor::Collect(const std::vector<Response>& responses, const FusionGroup& fusion,
                       std::unordered_map<std::string, Clock::time_point>* negotiation_start,
                       TensorQueue* queue, bool joined, Group* group) {
  const Clock::time_point now = Clock::now();
  queue->TakeGroup(responses, fusion.first, fusion.count, &taken_requests_, &taken_);
  for (size_t i = fusion.first; i < fusion.first + fusion.count; ++i) {
    const Response& response = responses[i];
    Request& r = taken_requests_[i - fusion.first];
    if (!taken_[i - fusion.first]) {
      if (response.is_error()) continue;
      if (joined) {
        group->stand_ins.push_back(&response);
      } else if (group->local.ok()) {
        group->local = Internal("rank " + std::to_string(rank_) + " agreed on '" +
                                response.meta.name + "' but has no such request pending");
      }
      continue;
    }
    RecordStage(Stage::kNegotiate, now - r.taken_at);
    if (timeline_) {
      auto it = negotiation_start->find(r.meta.name);
      Clock::time_point seen = it == negotiation_start->end() ? now : it->second;
      timeline_->Record(r.meta.name, "QUEUE", r.enqueued_at, seen);
      timeline_->Record(r.meta.name, "NEGOTIATE", seen, now);
      if (it != negotiation_start->end()) negotiation_start->erase(it);
    }
    group->requests.push_back(std::move(r));
  }
}

// A joined rank's part in a collective it did not submit: the agreed parameters
// with an empty contribution (zeros for allreduce, so that sums and averages
// count only the others; no rows for allgather). The result goes to scratch
// memory: on the host, or on this rank's GPU.
Status Executor::StandIn(const Response& agreed, Request* r,
                         std::vector<std::shared_ptr<void>>* scratch) {
  r->meta = agreed.meta;
  if (!agreed.devices.empty()) r->meta.device = static_cast<int32_t>(agreed.devices[rank_]);
  r->handle = std::make_shared<Handle>();
  r->enqueued_at = Clock::now();
  switch (agreed.meta.collective) {
    case Collective::kAllreduce:
      return StandInOutput(agreed, r, scratch);
    case Collective::kAllgather:
      r->meta.shape[0] = 0;
      return Status::OK();
    case Collective::kSparseAllgather:
      r->meta.pairs = 0;
      return Status::OK();
    case Collective::kSparseAllreduce:
      // No pairs of its own; the sums land in scratch memory of the dense size.
      r->meta.pairs = 0;
      return StandInOutput(agreed, r, scratch);
    case Collective::kBarrier:
      return Status::OK();
    default:  // broadcast, neighbour: rank 0 answers them with an error while ranks are joined
      return Internal(std::string("a joined rank cannot stand in for a ") +
                      CollectiveName(agreed.meta.collective));
  }
}

// A stand-in's zero-filled tensor of the agreed dense size, on the host or on this
// rank's GPU, as its input and output.
Status Executor::StandInOutput(const Response& agreed, Request* r,
                               std::vector<std::shared_ptr<void>>* scratch) {
  const int64_t bytes =
      agreed.meta.NumElements() * static_cast<int64_t>(DataTypeSize(agreed.meta.dtype));
  if (r->meta.device != kCpuDevice) {
    DeviceOps* ops = transport_->DeviceOpsFor(r->meta.device);
    if (ops == nullptr) return Internal("no GPU data plane to stand in on");
    std::shared_ptr<void> zeros;
    BRAID_RETURN_IF_ERROR(ops->Allocate(bytes, /*zero=*/true, &zeros));
    scratch->push_back(zeros);
    r->stream = ops->stream();  // where the zeros were written
  } else {
    auto owned = std::make_shared<PooledBuffer>(output_pool_->Acquire(bytes));
    if (bytes > 0) std::memset(owned->data(), 0, static_cast<size_t>(bytes));
    scratch->push_back(std::shared_ptr<void>(owned, owned->data()));
  }
  r->input = r->output = scratch->back().get();
  return Status::OK();
}

// The first GPU group sets up every rank's device plane, on the GPU the response
// names for it; a rank whose plane could not be set up fails it on every rank.
Status Executor::SetUpDevicePlane(const Response& agreed) {
  const int device =
      agreed.devices.empty() ? agreed.meta.device : static_cast<int>(agreed.devices[rank_]);
  if (device_plane_set_up_) return Status::OK();
  device_plane_set_up_ = true;
  plane_device_ = device;
  return transport_->SetUpDevicePlane(device);
}

// The backend for this rank's part of the group, or null with *status saying why.
Backend* Executor::BackendFor(const Response& agreed, int device, Status* status) {
  Status why;
  Backend* backend = transport_->BackendFor(device, &why);
  if (backend == nullptr) {
    std::string reason = why.ok() ? "no backend in this build handles them" : why.message();
    *status = Status(why.ok() ? StatusCode::kInvalidArgument : why.code(),
                     "'" + agreed.meta.name + "' is on " + DeviceName(device) + ": " + reason);
  }
  return backend;
}

void Executor::RunGroup(const Response& agreed, Group* group) {
  const Clock::time_point start = Clock::now();
  std::vector<Request>* requests = &group->requests;
  Status status;
  if (agreed.is_error()) {
    status = Status(agreed.error_code, agreed.error);
  } else if (agreed.meta.collective == Collective::kJoin) {
    // Every rank has joined: the handle reports who joined last.
    for (auto& r : *requests) r.handle->SetIntResult(agreed.meta.root);
  } else {
    // Everything from here may wait for the other ranks.
    WatchedStep watched(watchdog_, "a collective", &agreed, group->count);
    Status local = group->local;
    const bool on_gpu = agreed.meta.device != kCpuDevice;
    if (on_gpu) {
      // Collective the first time: every rank reaches it at this group.
      const Status set_up = SetUpDevicePlane(agreed);
      if (local.ok()) local = set_up;
    }
    const int device = on_gpu ? plane_device_ : kCpuDevice;
    std::vector<std::shared_ptr<void>> scratch;  // stand-ins' memory, kept until the group is done
    for (const Response* agreed_here : group->stand_ins) {
      Request r;
      Status stood =
          Guarded("a joined rank's stand-in", [&] { return StandIn(*agreed_here, &r, &scratch); });
      if (stood.ok()) {
        requests->push_back(std::move(r));
      } else if (local.ok()) {
        local = stood;
      }
    }
    for (const Request& r : *requests) {
      if (local.ok() && r.meta.device != device) {
        local = Internal("'" + r.meta.name + "' is on " + DeviceName(r.meta.device) +
                         " but the ranks agreed on " + DeviceName(device));
      }
    }
    Status why;
    Backend* backend = BackendFor(agreed, device, &why);
    if (backend == nullptr && local.ok()) local = why;
    DeviceOps* ops = transport_->DeviceOpsFor(device);
    status = Run(agreed, backend, ops, local, requests);
    // Host and device groups alike pass here, so both are counted.
    if (status.ok()) {
      RecordCollective(agreed.meta.collective, PayloadBytes(*requests), IndexBytes(*requests));
    }
  }
  RecordStageTimes(Stage::kExecute, Clock::now() - start, static_cast<int64_t>(requests->size()));
  for (auto& r : *requests) Finish(&r, status);
}

// Dispatches one agreed collective. A GPU group whose plane is missing still takes
// part in the ranks' agreement (with its failure), as every GPU group does.
Status Executor::Run(const Response& agreed, Backend* backend, DeviceOps* ops, const Status& local,
                     std::vector<Request>* requests) {
  const bool on_gpu = agreed.meta.device != kCpuDevice;
  if (IsSparse(agreed.meta.collective)) {
    // Its counts round stands in for the agreement round, failures included.
    Status here = local;
    if (here.ok() && (backend == nullptr || (on_gpu && ops == nullptr)))
      here = Internal("no data plane for this sparse collective on this rank");
    return Sparse(agreed, backend, ops, here, requests);
  }
  if (IsNeighbor(agreed.meta.collective)) {
    // Its own agreement round carries the failures.
    Status here = local;
    if (here.ok() && (backend == nullptr || (on_gpu && ops == nullptr)))
      here = Internal("no data plane for this neighbour collective on this rank");
    if (!here.ok()) return Agree(here);
    return Neighbor(agreed, backend, ops, here, requests);
  }
  if (on_gpu && (backend == nullptr || ops == nullptr)) {
    return Agree(local.ok() ? Internal("no GPU data plane on this rank") : local);
  }
  Request* first = requests->empty() ? nullptr : &(*requests)[0];
  switch (agreed.meta.collective) {
    case Collective::kAllreduce:
      if (on_gpu) return AllreduceOnDevice(agreed, backend, ops, local, requests);
      return local.ok() ? Allreduce(agreed, backend, requests) : local;
    case Collective::kAllgather:
      if (first == nullptr) return Agree(local.ok() ? Internal("no request") : local);
      if (on_gpu) return AllgatherOnDevice(agreed, backend, ops, local, first);
      return Allgather(agreed, backend, local, first);
    case Collective::kBroadcast:
      if (on_gpu) {
        if (first == nullptr) return Agree(local.ok() ? Internal("no request") : local);
        return BroadcastOnDevice(agreed, backend, ops, local, first);
      }
      return local.ok() && first != nullptr ? Broadcast(backend, first) : local;
    case Collective::kBarrier:
      return local.ok() ? backend->Barrier() : local;
    case Collective::kSparseAllreduce:
    case Collective::kSparseAllgather:
    case Collective::kNeighborAllreduce:
    case Collective::kNeighborExchange:
    case Collective::kJoin:
      break;  // handled above, or by RunGroup
  }
  return local;
}

// Every rank reaches this at the same group (the decision depends only on the
// agreed response: a GPU group or an allgather), each with its own outcome so far.
Status Executor::Agree(const Status& local) {
  return AgreeOnStatus(transport_->control(), local);
}

// A group (one tensor or a fused run) is reduced in the outputs themselves: inputs
// are copied (with the prescale factor) only when out of place or scaled, and the
// backend decides whether to pack into the fusion buffer or to reduce the outputs
// where they are.
Status Executor::Allreduce(const Response& agreed, Backend* backend,
                           std::vector<Request>* requests) {
  ReducePlan plan = PlanReduce(agreed.meta, world_size_);
  DataType dtype = agreed.meta.dtype;
  Clock::time_point t0 = Clock::now();
  std::vector<BufferView> outputs;
  outputs.reserve(requests->size());
  for (const Request& r : *requests) {
    cpu::ScaleCopy(r.output, r.input, r.meta.NumElements(), dtype, plan.prescale);
    outputs.push_back(ViewOf(r, r.output));
  }
  Clock::time_point t1 = Clock::now();
  int64_t group_bytes = 0;
  for (const BufferView& v : outputs) group_bytes += v.bytes();
  BufferView staging;
  // Reserved at start-up; pages are faulted in the first time a group needs them.
  staging.data = fusion_buffer_.Prefault(group_bytes);
  staging.count =
      std::min(group_bytes, fusion_buffer_.capacity()) / static_cast<int64_t>(DataTypeSize(dtype));
  staging.dtype = dtype;
  staging.device = agreed.meta.device;
  Status st = backend->AllreduceMany(outputs, plan.backend_op, staging);
  Clock::time_point t2 = Clock::now();
  if (st.ok()) {
    for (const Request& r : *requests) PostProcess(plan, r, r.output);
  }
  if (timeline_) {
    Trace(*requests, "PACK", t0, t1);
    Trace(*requests, "ALLREDUCE", t1, t2);
    Trace(*requests, "UNPACK", t2, Clock::now());
  }
  return st;
}

// The output is allocated before the ranks agree: a rank that cannot hold it
// fails the allgather everywhere instead of leaving the others inside it.
Status Executor::Allgather(const Response& agreed, Backend* backend, const Status& local,
                           Request* r) {
  GatherLayout layout = PlanGather(agreed, r->meta);
  const int64_t bytes = layout.elements * static_cast<int64_t>(DataTypeSize(r->meta.dtype));
  PooledBuffer out;
  Status prepared = local;
  if (prepared.ok()) {
    prepared = Guarded("the allgather output", [&] {
      out = output_pool_->Acquire(bytes);
      return Status::OK();
    });
  }
  if (prepared.ok()) prepared = backend->Prepare(bytes);
  BRAID_RETURN_IF_ERROR(Agree(prepared));
  BufferView recv = ViewOf(*r, out.data());
  recv.count = layout.elements;
  BufferView send = ViewOf(*r, const_cast<void*>(r->input));
  Clock::time_point t0 = Clock::now();
  Status st = backend->Allgatherv(send, recv, layout.counts);
  if (timeline_) timeline_->Record(r->meta.name, "ALLGATHER", t0, Clock::now());
  r->handle->SetOutput(std::move(out), std::move(layout.shape));
  return st;
}

Status Executor::Broadcast(Backend* backend, Request* r) {
  int64_t bytes = r->meta.NumElements() * static_cast<int64_t>(DataTypeSize(r->meta.dtype));
  if (r->output != r->input && bytes > 0)
    std::memcpy(r->output, r->input, static_cast<size_t>(bytes));
  Clock::time_point t0 = Clock::now();
  Status st = backend->Broadcast(ViewOf(*r, r->output), r->meta.root);
  if (timeline_) timeline_->Record(r->meta.name, "BROADCAST", t0, Clock::now());
  return st;
}

void Executor::Trace(const std::vector<Request>& requests, const char* phase,
                     Clock::time_point start, Clock::time_point end) {
  for (const Request& r : requests) timeline_->Record(r.meta.name, phase, start, end);
}

void Executor::Finish(Request* request, const Status& status) {
  request->handle->Complete(status);
}

}  // namespace braid
