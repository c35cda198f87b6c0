// The executor's neighbour collectives (docs/gossip.md): the group's tensors go to
// and come from this rank's neighbours in one exchange (core/neighbor_plan.h),
// then neighbor_allreduce mixes each tensor with its own weights (cpu::Mix, or
// DeviceOps::Mix on the device plane's stream) and neighbor_exchange hands the
// received blocks back as its output.
//
// Memory (the packed sends, the receive area) is kept between calls and grows
// when a group needs more. A rank that cannot get it, or whose tensors' producers
// failed, fails the group on every rank through one agreement round before the
// exchange, so that no rank waits for a message that will not come.
#include <cstdlib>
#include <cstring>

#include "collectives/cpu/mix.h"
#include "common/guard.h"
#include "core/executor.h"
#include "core/neighbor_plan.h"
#include "core/stats.h"

namespace braid {
namespace {

int64_t BytesOf(const Request& r) {
  return r.meta.NumElements() * static_cast<int64_t>(DataTypeSize(r.meta.dtype));
}

// `bytes` of host memory, 64-byte aligned; throws std::bad_alloc when there is none.
std::shared_ptr<void> HostMemory(int64_t bytes) {
  const size_t size = (static_cast<size_t>(bytes) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, size == 0 ? 64 : size);
  if (p == nullptr) throw std::bad_alloc();
  return std::shared_ptr<void>(p, std::free);
}

// A byte view of `bytes` at `data` for the backend.
BufferView Bytes(void* data, int64_t bytes, int device, void* stream) {
  BufferView v;
  v.data = data;
  v.count = bytes;
  v.dtype = DataType::kUInt8;
  v.device = device;
  v.stream = stream;
  return v;
}

}  // namespace

Status Executor::NeighborArea(DeviceOps* ops, int which, int64_t bytes, void** data) {
  Scratch& s = ops == nullptr ? neighbor_host_[which] : neighbor_device_[which];
  if (ops != nullptr && neighbor_ops_ != ops) {
    neighbor_device_[0] = neighbor_device_[1] = Scratch();
    neighbor_ops_ = ops;
  }
  if (!s.memory || s.bytes < bytes) {
    s = Scratch();
    if (ops != nullptr) {
      BRAID_RETURN_IF_ERROR(ops->Allocate(bytes, false, &s.memory));
    } else {
      s.memory = HostMemory(bytes);
    }
    s.bytes = bytes;
  }
  *data = s.memory.get();
  return Status::OK();
}

// Copies the tensors into the send area as the plan lays them out (nothing for a
// single tensor, which is sent from its input).
Status Executor::PackNeighborSends(const NeighborPlan& plan, const std::vector<Request>& requests,
                                   DeviceOps* ops, char* area) {
  std::vector<DeviceCopy> copies;
  auto copy = [&](const Request& r, int64_t offset) {
    const int64_t bytes = BytesOf(r);
    if (bytes == 0) return;
    if (ops == nullptr) {
      std::memcpy(area + offset, r.input, static_cast<size_t>(bytes));
    } else {
      copies.push_back({r.input, area + offset, bytes});
    }
  };
  if (plan.send_layout == NeighborPlan::SendLayout::kShared && !plan.sends.empty()) {
    // One buffer for every peer, laid out as any of the (identical) messages.
    const NeighborMessage& m = plan.sends[0];
    for (size_t k = 0; k < m.tensors.size(); ++k) copy(requests[m.tensors[k]], m.tensor_offsets[k]);
  } else if (plan.send_layout == NeighborPlan::SendLayout::kPerPeer) {
    for (const NeighborMessage& m : plan.sends) {
      for (size_t k = 0; k < m.tensors.size(); ++k)
        copy(requests[m.tensors[k]], m.offset + m.tensor_offsets[k]);
    }
  }
  if (copies.empty()) return Status::OK();
  return ops->ScaledCopies(copies, DataType::kUInt8, 1.0, 1);
}

// out = self_weight * input + sum of weight * (the neighbour's copy), per tensor.
Status Executor::MixNeighbors(const NeighborPlan& plan, const std::vector<Request>& requests,
                              DeviceOps* ops, const char* recv_area) {
  for (size_t t = 0; t < requests.size(); ++t) {
    const Request& r = requests[t];
    MixArgs args;
    args.out = r.output;
    args.self = r.input;
    args.self_weight = r.self_weight;
    args.weights = r.recv_weights;
    args.count = r.meta.NumElements();
    args.dtype = r.meta.dtype;
    for (int32_t peer : r.meta.recv_from) {
      const int64_t offset = plan.RecvOffset(t, peer);
      if (offset < 0)
        return Internal("neighbour plan lost the message from rank " + std::to_string(peer));
      args.neighbours.push_back(recv_area + offset);
    }
    if (ops == nullptr) {
      BRAID_RETURN_IF_ERROR(cpu::Mix(args));
    } else {
      args.stream = ops->stream();
      BRAID_RETURN_IF_ERROR(ops->Mix(args));
    }
  }
  return ops == nullptr ? Status::OK() : ops->Synchronize();
}

Status Executor::Neighbor(const Response& agreed, Backend* backend, DeviceOps* ops,
                          const Status& local, std::vector<Request>* requests) {
  const bool on_gpu = agreed.meta.device != kCpuDevice;
  const bool exchange = agreed.meta.collective == Collective::kNeighborExchange;
  DeviceOps* device_ops = on_gpu ? ops : nullptr;
  std::vector<NeighborTensorShape> shapes;
  for (const Request& r : *requests)
    shapes.push_back({BytesOf(r), &r.meta.send_to, &r.meta.recv_from});
  const NeighborPlan plan = PlanNeighbors(shapes, /*packed_recvs=*/exchange);
  Status prepared = local;
  if (prepared.ok() && requests->empty()) prepared = Internal("no request");
  if (prepared.ok() && on_gpu) prepared = WaitForProducers(ops, *requests);
  void* send_area = nullptr;
  void* recv_area = nullptr;
  PooledBuffer host_output;
  std::shared_ptr<void> device_output;
  if (prepared.ok()) {
    prepared = Guarded("the neighbour exchange's buffers", [&] {
      BRAID_RETURN_IF_ERROR(NeighborArea(device_ops, 0, plan.send_area_bytes, &send_area));
      if (!exchange) return NeighborArea(device_ops, 1, plan.recv_area_bytes, &recv_area);
      if (on_gpu) {
        BRAID_RETURN_IF_ERROR(ops->Allocate(plan.recv_area_bytes, false, &device_output));
        recv_area = device_output.get();
      } else {
        host_output = output_pool_->Acquire(plan.recv_area_bytes);
        recv_area = host_output.data();
      }
      return Status::OK();
    });
  }
  if (prepared.ok())
    prepared = PackNeighborSends(plan, *requests, device_ops, static_cast<char*>(send_area));
  if (prepared.ok()) prepared = backend->Prepare(plan.staged_bytes);
  BRAID_RETURN_IF_ERROR(Agree(prepared));

  const int device = on_gpu ? plane_device_ : kCpuDevice;
  void* stream = on_gpu ? ops->stream() : nullptr;
  std::vector<PeerBuffer> sends, recvs;
  std::vector<std::pair<int, int64_t>> sent;
  for (const NeighborMessage& m : plan.sends) {
    char* data = plan.send_layout == NeighborPlan::SendLayout::kDirect
                     ? static_cast<char*>(const_cast<void*>((*requests)[0].input))
                     : static_cast<char*>(send_area) + m.offset;
    sends.push_back({m.peer, Bytes(data, m.bytes, device, stream)});
    sent.emplace_back(m.peer, m.bytes);
  }
  for (const NeighborMessage& m : plan.recvs)
    recvs.push_back(
        {m.peer, Bytes(static_cast<char*>(recv_area) + m.offset, m.bytes, device, stream)});
  const Clock::time_point t0 = Clock::now();
  BRAID_RETURN_IF_ERROR(backend->NeighborExchange(sends, recvs));
  const Clock::time_point t1 = Clock::now();
  if (timeline_) Trace(*requests, "NEIGHBOR_EXCHANGE", t0, t1);
  RecordNeighborSends(sent);
  if (exchange) {
    Request& r = (*requests)[0];
    std::vector<int64_t> shape{static_cast<int64_t>(r.meta.recv_from.size())};
    shape.insert(shape.end(), r.meta.shape.begin(), r.meta.shape.end());
    if (on_gpu) {
      r.handle->SetDeviceOutput(std::move(device_output), std::move(shape), r.meta.device);
    } else {
      r.handle->SetOutput(std::move(host_output), std::move(shape));
    }
    return Status::OK();
  }
  Status st = MixNeighbors(plan, *requests, device_ops, static_cast<const char*>(recv_area));
  if (timeline_) Trace(*requests, "MIX", t1, Clock::now());
  return st;
}

}  // namespace braid
