// The executor's allreduce and allgather on device memory. Same plan as on the
// host (core/reduce_plan.h), but every copy and scaling step runs on the stream the
// tensor was produced on (through DeviceOps), so it is ordered with the framework's
// kernels without the host waiting; the backend orders its collective after those
// streams and returns once the collective is done.
#include "core/executor.h"
#include "core/reduce_plan.h"

namespace braid {
namespace {

// The copies `copy(r)` of the requests that `wanted(r)`, as one batched launch per
// run of consecutive requests on the same stream (normally one for the group).
template <typename Wanted, typename CopyOf>
Status CopyOnStreams(DeviceOps* ops, const std::vector<Request>& requests, DataType dtype,
                     double factor, int64_t divisor, Wanted wanted, CopyOf copy) {
  std::vector<DeviceCopy> batch;
  void* stream = nullptr;
  auto flush = [&]() -> Status {
    if (batch.empty()) return Status::OK();
    Status st = ops->ScaledCopies(batch, dtype, factor, divisor, stream);
    batch.clear();
    return st;
  };
  for (const Request& r : requests) {
    if (!wanted(r)) continue;
    if (!batch.empty() && r.stream != stream) BRAID_RETURN_IF_ERROR(flush());
    stream = r.stream;
    batch.push_back(copy(r));
  }
  return flush();
}

}  // namespace

Status Executor::AllreduceOnDevice(const Response& agreed, Backend* backend, DeviceOps* ops,
                                   std::vector<Request>* requests) {
  ReducePlan plan = PlanReduce(agreed.meta, world_size_);
  DataType dtype = agreed.meta.dtype;
  Clock::time_point t0 = Clock::now();
  std::vector<BufferView> outputs;
  outputs.reserve(requests->size());
  for (const Request& r : *requests) outputs.push_back(ViewOf(r, r.output));
  BRAID_RETURN_IF_ERROR(CopyOnStreams(
      ops, *requests, dtype, plan.prescale, 1,
      [&](const Request& r) { return r.output != r.input || plan.prescale != 1.0; },
      [](const Request& r) {
        return DeviceCopy{r.input, r.output, r.meta.NumElements()};
      }));
  BufferView staging;
  staging.dtype = dtype;
  staging.device = outputs[0].device;
  if (outputs.size() > 1) {
    int64_t bytes = 0;
    for (const BufferView& v : outputs)
      bytes += v.count * static_cast<int64_t>(DataTypeSize(dtype));
    BRAID_RETURN_IF_ERROR(ops->FusionBuffer(bytes, &staging.data));
    staging.count = bytes / static_cast<int64_t>(DataTypeSize(dtype));
  }
  Clock::time_point t1 = Clock::now();
  Status st = backend->AllreduceMany(outputs, plan.backend_op, staging);
  Clock::time_point t2 = Clock::now();
  if (st.ok() && (plan.postscale != 1.0 || plan.integer_divisor != 1)) {
    st = CopyOnStreams(
        ops, *requests, dtype, plan.postscale, plan.integer_divisor,
        [](const Request&) { return true; },
        [](const Request& r) {
          return DeviceCopy{r.output, r.output, r.meta.NumElements()};
        });
  }
  if (timeline_) {
    Trace(*requests, "PACK", t0, t1);
    Trace(*requests, "ALLREDUCE", t1, t2);
    Trace(*requests, "UNPACK", t2, Clock::now());
  }
  return st;
}

Status Executor::AllgatherOnDevice(const Response& agreed, Backend* backend, DeviceOps* ops,
                                   Request* r) {
  GatherLayout layout = PlanGather(agreed, r->meta);
  std::shared_ptr<void> out;
  BRAID_RETURN_IF_ERROR(ops->Allocate(
      layout.elements * static_cast<int64_t>(DataTypeSize(r->meta.dtype)), false, &out));
  BufferView recv = ViewOf(*r, out.get());
  recv.count = layout.elements;
  BufferView send = ViewOf(*r, const_cast<void*>(r->input));
  Clock::time_point t0 = Clock::now();
  Status st = backend->Allgatherv(send, recv, layout.counts);
  if (timeline_) timeline_->Record(r->meta.name, "ALLGATHER", t0, Clock::now());
  r->handle->SetDeviceOutput(std::move(out), std::move(layout.shape), r->meta.device);
  return st;
}

}  // namespace braid
