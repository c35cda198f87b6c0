#include "core/executor.h"

#include <cstring>

#include "collectives/cpu/reduce.h"
#include "common/logging.h"
#include "core/reduce_plan.h"
#include "core/stats.h"

namespace braid {
namespace {

// Allgather outputs kept for reuse after their handles are freed.
constexpr int64_t kMaxCachedOutputBytes = int64_t{1} << 30;

void PostProcess(const ReducePlan& plan, const Request& r, const void* reduced) {
  cpu::ScaleCopy(r.output, reduced, r.meta.NumElements(), r.meta.dtype, plan.postscale,
                 plan.integer_divisor);
}

// This rank's payload in one executed group (core/stats.h).
int64_t PayloadBytes(const std::vector<Request>& requests) {
  int64_t bytes = 0;
  for (const Request& r : requests)
    bytes += r.meta.NumElements() * static_cast<int64_t>(DataTypeSize(r.meta.dtype));
  return bytes;
}

}  // namespace

Executor::Executor(Transport* transport, int64_t fusion_threshold_bytes, Timeline* timeline)
    : transport_(transport),
      world_size_(transport->info().size),
      fusion_threshold_bytes_(fusion_threshold_bytes),
      timeline_(timeline),
      fusion_buffer_(fusion_threshold_bytes),
      output_pool_(BufferPool::Create(kMaxCachedOutputBytes)) {}

void Executor::Execute(const std::vector<Response>& responses,
                       std::unordered_map<std::string, Clock::time_point>* negotiation_start,
                       TensorQueue* queue, bool joined) {
  Clock::time_point now = Clock::now();
  for (const FusionGroup& group : PlanFusion(responses, fusion_threshold_bytes_)) {
    std::vector<Request> requests;
    std::vector<std::shared_ptr<void>> scratch;  // stand-ins' memory, kept until the group is done
    for (size_t i = group.first; i < group.first + group.count; ++i) {
      Request r;
      if (!queue->Take(responses[i].meta.name, &r)) {
        // A rank that never submitted an errored name has nothing to fail.
        if (joined && StandIn(responses[i], &r, &scratch)) requests.push_back(std::move(r));
        continue;
      }
      if (timeline_) {
        auto it = negotiation_start->find(r.meta.name);
        Clock::time_point seen = it == negotiation_start->end() ? now : it->second;
        timeline_->Record(r.meta.name, "QUEUE", r.enqueued_at, seen);
        timeline_->Record(r.meta.name, "NEGOTIATE", seen, now);
        if (it != negotiation_start->end()) negotiation_start->erase(it);
      }
      requests.push_back(std::move(r));
    }
    if (requests.empty()) continue;
    if (requests.size() != group.count && !responses[group.first].is_error()) {
      Status bug = Internal("rank agreed on '" + responses[group.first].meta.name +
                            "' but has no such request pending");
      for (auto& r : requests) Finish(&r, bug);
      continue;
    }
    RunGroup(responses, group, &requests);
  }
}

// A joined rank's part in a collective it did not submit: the agreed parameters
// with an empty contribution (zeros for allreduce, so that sums and averages
// count only the others; no rows for allgather). The result goes to scratch
// memory: on the host, or on the GPU this rank last used (the agreed device is
// rank 0's, and ranks may use different GPUs).
bool Executor::StandIn(const Response& agreed, Request* r,
                       std::vector<std::shared_ptr<void>>* scratch) {
  if (agreed.is_error()) return false;
  r->meta = agreed.meta;
  // The agreed device is rank 0's; on a GPU this rank stands in on its own.
  if (r->meta.device != kCpuDevice && gpu_device_ != kCpuDevice) r->meta.device = gpu_device_;
  r->handle = std::make_shared<Handle>();
  r->enqueued_at = Clock::now();
  switch (agreed.meta.collective) {
    case Collective::kAllreduce: {
      int64_t bytes = agreed.NumBytes();
      if (r->meta.device != kCpuDevice) {
        DeviceOps* ops = transport_->DeviceOpsFor(r->meta.device);
        std::shared_ptr<void> zeros;
        if (ops == nullptr || !ops->Allocate(bytes, /*zero=*/true, &zeros).ok()) return false;
        scratch->push_back(zeros);
        r->stream = ops->stream();  // where the zeros were written
      } else {
        auto owned = std::make_shared<PooledBuffer>(output_pool_->Acquire(bytes));
        if (bytes > 0) std::memset(owned->data(), 0, static_cast<size_t>(bytes));
        scratch->push_back(std::shared_ptr<void>(owned, owned->data()));
      }
      r->input = r->output = scratch->back().get();
      return true;
    }
    case Collective::kAllgather:
      r->meta.shape[0] = 0;
      return true;
    case Collective::kBarrier:
      return true;
    default:  // broadcast: rank 0 answers it with an error while ranks are joined
      return false;
  }
}

// The backend for this rank's tensors of the group (their device: ranks may use
// different GPUs), or null with *status saying why.
Backend* Executor::BackendFor(const Response& agreed, const std::vector<Request>& requests,
                              Status* status) {
  int device = requests[0].meta.device;
  if (device != kCpuDevice) gpu_device_ = device;
  Status why;
  Backend* backend = transport_->BackendFor(device, &why);
  if (backend == nullptr) {
    std::string reason = why.ok() ? "no backend in this build handles them" : why.message();
    *status = Status(why.ok() ? StatusCode::kInvalidArgument : why.code(),
                     "'" + agreed.meta.name + "' is on " + DeviceName(device) + ": " + reason);
  }
  return backend;
}

void Executor::RunGroup(const std::vector<Response>& responses, const FusionGroup& group,
                        std::vector<Request>* requests) {
  const Response& agreed = responses[group.first];
  Status status;
  if (agreed.meta.collective == Collective::kJoin && !agreed.is_error()) {
    // Every rank has joined: the handle reports who joined last.
    for (auto& r : *requests) r.handle->SetIntResult(agreed.meta.root);
  } else if (agreed.is_error()) {
    status = Status(agreed.error_code, agreed.error);
  } else if (Backend* backend = BackendFor(agreed, *requests, &status); backend == nullptr) {
    // status says why
  } else {
    DeviceOps* ops = transport_->DeviceOpsFor((*requests)[0].meta.device);
    switch (agreed.meta.collective) {
      case Collective::kAllreduce:
        status = ops ? AllreduceOnDevice(agreed, backend, ops, requests)
                     : Allreduce(agreed, backend, requests);
        break;
      case Collective::kAllgather:
        status = ops ? AllgatherOnDevice(agreed, backend, ops, &(*requests)[0])
                     : Allgather(agreed, backend, &(*requests)[0]);
        break;
      case Collective::kBroadcast:
        status = ops ? BroadcastOnDevice(backend, ops, &(*requests)[0])
                     : Broadcast(backend, &(*requests)[0]);
        break;
      case Collective::kBarrier:
        status = backend->Barrier();
        break;
      case Collective::kJoin:
        break;  // handled above
    }
    // Host and device groups alike pass here, so both are counted.
    if (status.ok()) RecordCollective(agreed.meta.collective, PayloadBytes(*requests));
  }
  for (auto& r : *requests) Finish(&r, status);
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
  BufferView staging;
  staging.data = fusion_buffer_.data();
  staging.count = fusion_buffer_.bytes() / static_cast<int64_t>(DataTypeSize(dtype));
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

Status Executor::Allgather(const Response& agreed, Backend* backend, Request* r) {
  GatherLayout layout = PlanGather(agreed, r->meta);
  PooledBuffer out =
      output_pool_->Acquire(layout.elements * static_cast<int64_t>(DataTypeSize(r->meta.dtype)));
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
