// The executor's collectives on device memory. Same plan as on the host
// (core/reduce_plan.h), but every copy and scaling step is queued on the device
// plane's stream (DeviceOps), which first waits for the ready events recorded when
// the tensors were enqueued (core/ready_event.h): ordered after the framework's
// kernels that produced them, never after kernels the framework queued later, and
// without the host waiting. The backend is handed views on that stream, applies the
// scaling in its own passes and returns once the outputs are final, so a finished
// handle means a finished output.
#include <map>
#include <set>

#include "common/guard.h"
#include "core/executor.h"
#include "core/reduce_plan.h"

namespace braid {
namespace {

// The same for one request: its ready event, or its stream as it is now.
Status WaitForProducer(DeviceOps* ops, const Request& r) {
  return ops->WaitFor(r.ready.get(), r.stream);
}

// A view of `data` for the backend, on the device plane's stream.
BufferView DeviceView(const Request& r, void* data, const DeviceOps& ops) {
  BufferView v = ViewOf(r, data);
  v.stream = ops.stream();
  return v;
}

// The copies `copy(r)` of the requests that `wanted(r)`, as one batched launch.
template <typename Wanted, typename CopyOf>
Status CopyBatch(DeviceOps* ops, const std::vector<Request>& requests, DataType dtype,
                 double factor, int64_t divisor, Wanted wanted, CopyOf copy) {
  std::vector<DeviceCopy> batch;
  for (const Request& r : requests) {
    if (wanted(r)) batch.push_back(copy(r));
  }
  if (batch.empty()) return Status::OK();
  return ops->ScaledCopies(batch, dtype, factor, divisor);
}

int64_t TotalBytes(const std::vector<BufferView>& views) {
  int64_t bytes = 0;
  for (const BufferView& v : views) bytes += v.bytes();
  return bytes;
}

// The fused group's staging buffer: the persistent device fusion buffer, or none
// for a single tensor (reduced where it is).
Status Staging(DeviceOps* ops, const std::vector<BufferView>& outputs, BufferView* staging) {
  staging->dtype = outputs[0].dtype;
  staging->device = outputs[0].device;
  staging->stream = ops->stream();
  if (outputs.size() == 1) return Status::OK();
  const int64_t bytes = TotalBytes(outputs);
  BRAID_RETURN_IF_ERROR(ops->FusionBuffer(bytes, &staging->data));
  staging->count = bytes / static_cast<int64_t>(DataTypeSize(staging->dtype));
  return Status::OK();
}

}  // namespace

// ops->stream() waits for every request's inputs. On one producer stream the ready
// event recorded last covers the earlier ones, so a group produced on one stream
// costs one wait.
Status WaitForProducers(DeviceOps* ops, const std::vector<Request>& requests) {
  std::map<void*, const Request*> latest;  // by producer stream
  std::set<void*> unrecorded;              // streams with a request that has no event
  for (const Request& r : requests) {
    if (!r.ready) {
      unrecorded.insert(r.stream);
      continue;
    }
    const Request*& slot = latest[r.stream];
    if (slot == nullptr || r.ready_order > slot->ready_order) slot = &r;
  }
  for (const auto& [stream, r] : latest)
    BRAID_RETURN_IF_ERROR(ops->WaitFor(r->ready.get(), stream));
  for (void* stream : unrecorded) BRAID_RETURN_IF_ERROR(ops->WaitFor(nullptr, stream));
  return Status::OK();
}

// Out of place, inputs are copied to the outputs with the prescale factor on the
// way (one pass); the backend applies the rest of the scaling in its own pack and
// unpack passes and returns with the outputs final. A local failure before the
// collective (a CUDA error, the fusion buffer, the backend's staging) is agreed
// on first: every rank then fails the group with the same message and none runs it.
Status Executor::AllreduceOnDevice(const Response& agreed, Backend* backend, DeviceOps* ops,
                                   const Status& local, std::vector<Request>* requests) {
  ReducePlan plan = PlanReduce(agreed.meta, world_size_);
  DataType dtype = agreed.meta.dtype;
  Clock::time_point t0 = Clock::now();
  std::vector<BufferView> outputs;
  outputs.reserve(requests->size());
  bool out_of_place = false;
  for (const Request& r : *requests) {
    outputs.push_back(DeviceView(r, r.output, *ops));
    out_of_place = out_of_place || r.output != r.input;
  }
  Status prepared = local;
  if (prepared.ok()) prepared = WaitForProducers(ops, *requests);
  ReduceScaling scaling{plan.prescale, plan.postscale, plan.integer_divisor};
  if (prepared.ok() && out_of_place) {
    // Inputs are copied to the outputs with the prescale factor on the way (and
    // in-place members of the group scaled where they are).
    prepared = CopyBatch(
        ops, *requests, dtype, plan.prescale, 1,
        [&](const Request& r) { return r.output != r.input || scaling.pre(); },
        [](const Request& r) {
          return DeviceCopy{r.input, r.output, r.meta.NumElements()};
        });
    scaling.prescale = 1.0;
  }
  BufferView staging;
  if (prepared.ok())
    prepared = Guarded("the fusion buffer", [&] { return Staging(ops, outputs, &staging); });
  if (prepared.ok()) prepared = backend->Prepare(TotalBytes(outputs));
  BRAID_RETURN_IF_ERROR(Agree(prepared));
  Clock::time_point t1 = Clock::now();
  Status st = backend->AllreduceScaled(outputs, plan.backend_op, staging, scaling);
  if (timeline_) {
    Trace(*requests, "PACK", t0, t1);
    Trace(*requests, "ALLREDUCE", t1, Clock::now());
  }
  return st;
}

Status Executor::AllgatherOnDevice(const Response& agreed, Backend* backend, DeviceOps* ops,
                                   const Status& local, Request* r) {
  GatherLayout layout = PlanGather(agreed, r->meta);
  const int64_t bytes = layout.elements * static_cast<int64_t>(DataTypeSize(r->meta.dtype));
  std::shared_ptr<void> out;
  Status prepared = local;
  if (prepared.ok())
    prepared = Guarded("the allgather output", [&] { return ops->Allocate(bytes, false, &out); });
  if (prepared.ok()) prepared = WaitForProducer(ops, *r);
  if (prepared.ok()) prepared = backend->Prepare(bytes);
  BRAID_RETURN_IF_ERROR(Agree(prepared));
  BufferView recv = DeviceView(*r, out.get(), *ops);
  recv.count = layout.elements;
  BufferView send = DeviceView(*r, const_cast<void*>(r->input), *ops);
  Clock::time_point t0 = Clock::now();
  Status st = backend->Allgatherv(send, recv, layout.counts);
  if (timeline_) timeline_->Record(r->meta.name, "ALLGATHER", t0, Clock::now());
  r->handle->SetDeviceOutput(std::move(out), std::move(layout.shape), r->meta.device);
  return st;
}

Status Executor::BroadcastOnDevice(const Response& agreed, Backend* backend, DeviceOps* ops,
                                   const Status& local, Request* r) {
  Status prepared = local;
  if (prepared.ok()) prepared = WaitForProducer(ops, *r);
  if (prepared.ok() && r->output != r->input && r->meta.NumElements() > 0) {
    prepared =
        ops->ScaledCopies({{r->input, r->output, r->meta.NumElements()}}, r->meta.dtype, 1.0, 1);
  }
  const BufferView buf = DeviceView(*r, r->output, *ops);
  if (prepared.ok()) prepared = backend->Prepare(buf.bytes());
  BRAID_RETURN_IF_ERROR(Agree(prepared));
  Clock::time_point t0 = Clock::now();
  Status st = backend->Broadcast(buf, r->meta.root);
  if (timeline_) timeline_->Record(r->meta.name, "BROADCAST", t0, Clock::now());
  return st;
}

}  // namespace braid
