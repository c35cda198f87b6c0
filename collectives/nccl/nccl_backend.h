// The device data plane: collectives on GPU buffers over NCCL, one device per
// process (NCCL refuses two ranks of one communicator on one GPU).
//
// Every collective runs on the backend's own non-blocking stream, ordered after
// the work already queued on each buffer's `stream` (null: the legacy default
// stream), and returns once it has completed on the device (nccl_wait.h: no core
// spins, and with a stall timeout nothing hangs). Outputs are therefore ready for
// any stream when a call returns.
//
// Errors: a bad argument (wrong device, host memory, dtype, op, counts) is
// kInvalidArgument before anything is enqueued, and the backend stays usable. Any
// CUDA or NCCL failure once a collective has started, an asynchronous NCCL error or
// a stall past the timeout aborts the communicator (ncclCommAbort): the ranks'
// communicators would otherwise be out of step. The call returns the error naming
// the collective, and every later call is refused with kAborted.
//
// collectives/transport.cc creates one (CreateNcclBackend) for a device the first
// time a GPU tensor on it is executed.
//
// Threading: driven by one thread at a time (Backend's contract); a watchdog
// thread of its own checks running collectives (nccl_wait.h).
#pragma once

#include <cuda_runtime_api.h>

#include <memory>
#include <string>
#include <vector>

#include "collectives/backend.h"
#include "collectives/control_channel.h"
#include "collectives/cuda/device_args.h"
#include "collectives/transport.h"
#include "common/status.h"

namespace braid {
namespace cuda {
class BatchedCopier;
class DeviceBuffer;
}  // namespace cuda

namespace nccl {

class NcclContext;
class CompletionWaiter;

struct NcclOptions {
  // The CUDA device this process uses; -1: local_rank modulo the visible devices.
  int device = -1;
  // A collective still running this long after it was enqueued aborts the
  // communicator (kAborted); 0: never.
  double stall_timeout_seconds = 0.0;
  // How often the watchdog checks a running collective for asynchronous NCCL errors
  // and the deadline (at least 100 us).
  int poll_interval_us = 1000;
  // Checks every buffer with cudaPointerGetAttributes (about a microsecond each)
  // so that host memory or another device's memory is kInvalidArgument instead of
  // a fault inside NCCL.
  bool check_pointers = true;
};

class NcclBackend : public Backend {
 public:
  // Collective over `control` (every rank calls it, in the same order as its other
  // collective calls on `control`): creates the communicator over all its ranks.
  static Status Create(ControlChannel* control, const WorldInfo& world, const NcclOptions& options,
                       std::unique_ptr<NcclBackend>* out);
  ~NcclBackend() override;

  const char* name() const override { return "nccl"; }
  bool CanHandle(int device) const override;
  Status Allreduce(const BufferView& buf, ReduceOp op) override;
  // One buffer is reduced in place; several are packed back to back into
  // `staging` (device memory on this device, at least their total size) with one
  // batched copy kernel, reduced with one ncclAllReduce and unpacked the same way;
  // `staging` then holds the reduced group.
  Status AllreduceMany(const std::vector<BufferView>& buffers, ReduceOp op,
                       const BufferView& staging) override;
  // The same, with the prescale folded into the pack kernel and the postscale and
  // integer division into the unpack kernel (a single buffer: in-place passes on
  // either side, or ncclAvg for a plain floating-point average).
  Status AllreduceScaled(const std::vector<BufferView>& buffers, ReduceOp op,
                         const BufferView& staging, const ReduceScaling& scaling) override;
  // One ncclBroadcast per rank with a non-empty block, in one NCCL group.
  Status Allgatherv(const BufferView& send, const BufferView& recv,
                    const std::vector<int64_t>& counts) override;
  Status Broadcast(const BufferView& buf, int root) override;
  // A one-element allreduce on a persistent device buffer.
  Status Barrier() override;
  // Every ncclRecv and ncclSend (bytes, as ncclUint8) in one NCCL group, ordered
  // after every buffer's stream; waited for like the collectives.
  Status NeighborExchange(const std::vector<PeerBuffer>& sends,
                          const std::vector<PeerBuffer>& recvs) override;
  // ncclCommAbort from another thread: the collective in flight returns.
  void Abort() override;

  int device() const;
  int rank() const;
  int size() const;
  cudaStream_t stream() const;

 private:
  explicit NcclBackend(const NcclOptions& options);
  Status Init(ControlChannel* control, const WorldInfo& world);
  Status CheckUsable() const;
  bool IsPlainAverage(DataType dtype, ReduceOp op, const ReduceScaling& scaling) const;
  Status AllreduceOne(const BufferView& buf, ReduceOp op, const ReduceScaling& scaling);
  cuda::BufferRules rules() const { return {"nccl", device(), options_.check_pointers}; }
  Status OrderAfter(void* producer);
  Status OrderAfterAll(const std::vector<BufferView>& buffers);
  template <typename Enqueue>
  Status Run(const std::string& what, Enqueue enqueue);
  Status Fail(const std::string& what, const Status& error);
  Status EnqueueAllgatherv(const BufferView& send, const BufferView& recv,
                           const std::vector<int64_t>& counts);
  Status EnqueueNeighborExchange(const std::vector<PeerBuffer>& sends,
                                 const std::vector<PeerBuffer>& recvs);

  NcclOptions options_;
  // Declared first so that it is destroyed last: the others use its stream and
  // communicator.
  std::unique_ptr<NcclContext> context_;
  std::unique_ptr<CompletionWaiter> waiter_;
  std::unique_ptr<cuda::DeviceBuffer> barrier_;
  std::unique_ptr<cuda::BatchedCopier> copier_;  // packs and unpacks fused groups
  cudaEvent_t inputs_ready_ = nullptr;           // reused by OrderAfter
  Status failure_;                               // set once the communicator was aborted
};

// Creates an NcclBackend (see NcclBackend::Create) as a braid::Backend.
Status CreateNcclBackend(ControlChannel* control, const WorldInfo& world,
                         const NcclOptions& options, std::unique_ptr<Backend>* out);

}  // namespace nccl
}  // namespace braid
