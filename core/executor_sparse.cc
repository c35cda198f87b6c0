// The executor's sparse collectives (collectives/sparse/sparse_exchange.h): the
// agreed group's requests become sparse tensor views over their own memory, on
// the host or on the device plane's GPU; the exchange does the rest.
#include "collectives/sparse/sparse_exchange.h"
#include "common/guard.h"
#include "core/executor.h"

namespace braid {
namespace {

SparseTensor TensorOf(const Request& r) {
  SparseTensor t;
  t.what = std::string(CollectiveName(r.meta.collective)) + " of '" + r.meta.name + "'";
  t.indices = r.indices;
  t.values = r.input;
  t.pairs = r.meta.pairs;
  t.length = r.meta.shape.empty() ? 0 : r.meta.shape[0];
  t.row = SparseRowElements(r.meta);
  t.dense = r.output;
  return t;
}

}  // namespace

SparseMemory* Executor::SparseMemoryFor(DeviceOps* ops) {
  if (ops == nullptr) {
    if (!host_sparse_) {
      PrefaultedBuffer* fusion = &fusion_buffer_;
      host_sparse_ = HostSparseMemory([fusion](int64_t bytes) { return fusion->Prefault(bytes); },
                                      fusion_buffer_.capacity());
    }
    return host_sparse_.get();
  }
  if (!device_sparse_ || device_sparse_ops_ != ops) {
    device_sparse_ = DeviceSparseMemory(ops);
    device_sparse_ops_ = ops;
  }
  return device_sparse_.get();
}

// Every rank reaches the exchange's counts round for the group, each with its own
// outcome so far, so a rank that failed here fails the group everywhere.
Status Executor::Sparse(const Response& agreed, Backend* backend, DeviceOps* ops,
                        const Status& local, std::vector<Request>* requests) {
  const bool on_gpu = agreed.meta.device != kCpuDevice && ops != nullptr;
  SparseMemory* memory = SparseMemoryFor(on_gpu ? ops : nullptr);
  Status prepared = local;
  if (prepared.ok() && requests->empty()) prepared = Internal("no request");
  if (prepared.ok() && on_gpu) prepared = WaitForProducers(ops, *requests);
  SparseGroup group;
  group.value_dtype = agreed.meta.dtype;
  group.index_dtype = agreed.meta.index_dtype;
  group.op = agreed.meta.op;
  group.dense_fallback = agreed.meta.dense_fallback;
  std::vector<SparseTensor> tensors;
  for (const Request& r : *requests) tensors.push_back(TensorOf(r));
  ControlChannel* control = transport_->control();
  const Clock::time_point t0 = Clock::now();
  if (agreed.meta.collective == Collective::kSparseAllgather) {
    SparseGathered gathered;
    SparseTensor tensor = tensors.empty() ? SparseTensor() : tensors[0];
    Status st = SparseAllgather(control, backend, memory, prepared, group, tensor, &gathered);
    if (timeline_) Trace(*requests, "SPARSE_ALLGATHER", t0, Clock::now());
    if (st.ok()) {
      Request& r = (*requests)[0];
      std::vector<int64_t> shape{gathered.total_pairs};
      r.handle->SetDeviceOutput(std::move(gathered.memory), std::move(shape), r.meta.device);
      r.handle->SetSparseLayout(std::move(gathered.pairs), gathered.values_offset);
    }
    return st;
  }
  SparseOutcome outcome;
  Status st = SparseAllreduce(control, backend, memory, prepared, group, tensors, &outcome);
  if (timeline_) {
    Trace(*requests, outcome.ran_dense ? "SPARSE_AS_DENSE_ALLREDUCE" : "SPARSE_ALLREDUCE", t0,
          Clock::now());
  }
  return st;
}

}  // namespace braid
