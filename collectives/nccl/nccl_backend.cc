#include "collectives/nccl/nccl_backend.h"

#include <nccl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "collectives/cuda/batched_copy.h"
#include "collectives/cuda/cuda_check.h"
#include "collectives/cuda/device_memory.h"
#include "collectives/cuda/group_copy.h"
#include "collectives/nccl/nccl_check.h"
#include "collectives/nccl/nccl_context.h"
#include "collectives/nccl/nccl_datatypes.h"
#include "collectives/nccl/nccl_wait.h"
#include "collectives/peer_messages.h"

namespace braid {
namespace nccl {
namespace {

std::string Describe(const char* collective, int64_t count, DataType dtype) {
  return std::string(collective) + " of " + std::to_string(count) + " " + DataTypeName(dtype);
}

}  // namespace

Status NcclBackend::Create(ControlChannel* control, const WorldInfo& world,
                           const NcclOptions& options, std::unique_ptr<NcclBackend>* out) {
  std::unique_ptr<NcclBackend> backend(new NcclBackend(options));
  BRAID_RETURN_IF_ERROR(backend->Init(control, world));
  *out = std::move(backend);
  return Status::OK();
}

Status CreateNcclBackend(ControlChannel* control, const WorldInfo& world,
                         const NcclOptions& options, std::unique_ptr<Backend>* out) {
  std::unique_ptr<NcclBackend> backend;
  BRAID_RETURN_IF_ERROR(NcclBackend::Create(control, world, options, &backend));
  *out = std::move(backend);
  return Status::OK();
}

NcclBackend::NcclBackend(const NcclOptions& options) : options_(options) {}

Status NcclBackend::Init(ControlChannel* control, const WorldInfo& world) {
  BRAID_RETURN_IF_ERROR(NcclContext::Create(control, world, options_.device, &context_));
  BRAID_RETURN_IF_ERROR(CompletionWaiter::Create(context_.get(), options_.stall_timeout_seconds,
                                                 options_.poll_interval_us, &waiter_));
  BRAID_RETURN_IF_ERROR(cuda::DeviceBuffer::Create(device(), sizeof(int32_t), &barrier_));
  BRAID_RETURN_IF_ERROR(cuda::BatchedCopier::Create(device(), &copier_));
  cuda::DeviceGuard guard(device());
  BRAID_CHECK_CUDA(cudaSetDevice(device()));
  BRAID_CHECK_CUDA(cudaMemsetAsync(barrier_->data(), 0, sizeof(int32_t), stream()));
  BRAID_CHECK_CUDA(cudaEventCreateWithFlags(&inputs_ready_, cudaEventDisableTiming));
  return Status::OK();
}

NcclBackend::~NcclBackend() {
  if (inputs_ready_ == nullptr) return;
  cuda::DeviceGuard guard(device());
  (void)cudaEventDestroy(inputs_ready_);
}

int NcclBackend::device() const {
  return context_->device();
}
int NcclBackend::rank() const {
  return context_->rank();
}
int NcclBackend::size() const {
  return context_->size();
}
cudaStream_t NcclBackend::stream() const {
  return context_->stream();
}

bool NcclBackend::CanHandle(int device) const {
  return device >= 0 && device == context_->device();
}

Status NcclBackend::CheckUsable() const {
  if (failure_.ok()) return Status::OK();
  const std::string why = failure_.message();
  return Status(StatusCode::kAborted, "nccl: the backend takes no more work: " + why);
}

// The backend's stream waits for the work queued so far on `producer`, the stream
// a buffer was produced on (null: the legacy default stream, which a non-blocking
// stream would not otherwise wait for).
Status NcclBackend::OrderAfter(void* producer) {
  cudaStream_t other = static_cast<cudaStream_t>(producer);
  if (other == stream()) return Status::OK();
  BRAID_CHECK_CUDA(cudaEventRecord(inputs_ready_, other));
  BRAID_CHECK_CUDA(cudaStreamWaitEvent(stream(), inputs_ready_, 0));
  return Status::OK();
}

Status NcclBackend::OrderAfterAll(const std::vector<BufferView>& buffers) {
  for (size_t i = 0; i < buffers.size(); ++i) {
    // A group's buffers normally share one stream: wait once per run of it.
    if (i > 0 && buffers[i].stream == buffers[i - 1].stream) continue;
    BRAID_RETURN_IF_ERROR(OrderAfter(buffers[i].stream));
  }
  return Status::OK();
}

// Enqueues a collective on the backend's stream and waits for it. A failure from
// here on leaves the ranks out of step: it aborts the communicator.
template <typename Enqueue>
Status NcclBackend::Run(const std::string& what, Enqueue enqueue) {
  cuda::DeviceGuard guard(device());
  Status status = [&]() -> Status {
    BRAID_CHECK_CUDA(cudaSetDevice(device()));
    return enqueue();
  }();
  if (status.ok()) status = waiter_->Wait();
  if (!status.ok()) return Fail(what, status);
  return Status::OK();
}

void NcclBackend::Abort() {
  (void)context_->Abort();
}

Status NcclBackend::Fail(const std::string& what, const Status& error) {
  const Status aborted = context_->Abort();
  std::string message = "nccl " + what + ": " + error.message() + "; the communicator was aborted";
  if (!aborted.ok()) message += " (" + aborted.message() + ")";
  failure_ = Status(error.code(), message);
  return failure_;
}

Status NcclBackend::Allreduce(const BufferView& buf, ReduceOp op) {
  return AllreduceOne(buf, op, ReduceScaling());
}

Status NcclBackend::AllreduceMany(const std::vector<BufferView>& buffers, ReduceOp op,
                                  const BufferView& staging) {
  return AllreduceScaled(buffers, op, staging, ReduceScaling());
}

// Whether a sum scaled by 1/size afterwards, and by nothing else, is an average
// that ncclAvg can compute itself (floating types; integers round as the host does
// only through the unpack kernel's division).
bool NcclBackend::IsPlainAverage(DataType dtype, ReduceOp op, const ReduceScaling& scaling) const {
  return op == ReduceOp::kSum && IsFloatingPoint(dtype) && size() > 1 && !scaling.pre() &&
         scaling.divisor <= 1 && scaling.postscale == 1.0 / size();
}

// One buffer in place: the scaling passes run on the backend's stream on either
// side of ncclAllReduce (none for a plain average, which is ncclAvg).
Status NcclBackend::AllreduceOne(const BufferView& buf, ReduceOp op, const ReduceScaling& scaling) {
  BRAID_RETURN_IF_ERROR(CheckUsable());
  BRAID_RETURN_IF_ERROR(CheckBuffer(buf, rules(), "allreduce"));
  ncclDataType_t type;
  ncclRedOp_t nccl_op;
  BRAID_RETURN_IF_ERROR(NcclType(buf.dtype, &type));
  BRAID_RETURN_IF_ERROR(NcclOp(op, &nccl_op));
  if (buf.count == 0) return Status::OK();
  ReduceScaling rest = scaling;
  if (IsPlainAverage(buf.dtype, op, scaling)) {
    nccl_op = ncclAvg;
    rest.postscale = 1.0;
  }
  return Run(Describe("allreduce", buf.count, buf.dtype), [&]() -> Status {
    BRAID_RETURN_IF_ERROR(OrderAfter(buf.stream));
    BRAID_RETURN_IF_ERROR(cuda::ScaleInPlace(*copier_, buf, cuda::PreScaling(rest), stream()));
    BRAID_CHECK_NCCL(ncclAllReduce(buf.data, buf.data, static_cast<size_t>(buf.count), type,
                                   nccl_op, context_->comm(), stream()));
    return cuda::ScaleInPlace(*copier_, buf, cuda::PostScaling(rest), stream());
  });
}

Status NcclBackend::AllreduceScaled(const std::vector<BufferView>& buffers, ReduceOp op,
                                    const BufferView& staging, const ReduceScaling& scaling) {
  BRAID_RETURN_IF_ERROR(CheckUsable());
  if (buffers.empty()) return Status::OK();
  if (buffers.size() == 1) return AllreduceOne(buffers[0], op, scaling);
  int64_t total = 0;
  BRAID_RETURN_IF_ERROR(CheckGroup(buffers, staging, rules(), &total));
  const DataType dtype = buffers[0].dtype;
  ncclDataType_t type;
  ncclRedOp_t nccl_op;
  BRAID_RETURN_IF_ERROR(NcclType(dtype, &type));
  BRAID_RETURN_IF_ERROR(NcclOp(op, &nccl_op));
  if (total == 0) return Status::OK();
  const int64_t count = total / static_cast<int64_t>(DataTypeSize(dtype));
  char* packed = static_cast<char*>(staging.data);
  const std::string what = Describe("fused allreduce", count, dtype) + " in " +
                           std::to_string(buffers.size()) + " buffers";
  return Run(what, [&]() -> Status {
    BRAID_RETURN_IF_ERROR(OrderAfterAll(buffers));
    BRAID_RETURN_IF_ERROR(OrderAfter(staging.stream));
    BRAID_RETURN_IF_ERROR(cuda::CopyGroup(*copier_, buffers, packed, cuda::GroupCopy::kPack,
                                          stream(), cuda::PreScaling(scaling)));
    BRAID_CHECK_NCCL(ncclAllReduce(packed, packed, static_cast<size_t>(count), type, nccl_op,
                                   context_->comm(), stream()));
    return cuda::CopyGroup(*copier_, buffers, packed, cuda::GroupCopy::kUnpack, stream(),
                           cuda::PostScaling(scaling));
  });
}

// Rank r's block is broadcast from r into every rank's `recv`, all in one NCCL
// group so that NCCL runs them together. Every rank sees the same counts, so every
// rank skips the same empty blocks. In place, rank r's source is its own block.
Status NcclBackend::EnqueueAllgatherv(const BufferView& send, const BufferView& recv,
                                      const std::vector<int64_t>& counts) {
  ncclDataType_t type;
  BRAID_RETURN_IF_ERROR(NcclType(recv.dtype, &type));
  const int64_t elem = static_cast<int64_t>(DataTypeSize(recv.dtype));
  auto broadcast = [&](const void* source, void* block, int64_t count, int root) -> Status {
    BRAID_CHECK_NCCL(ncclBroadcast(source, block, static_cast<size_t>(count), type, root,
                                   context_->comm(), stream()));
    return Status::OK();
  };
  BRAID_CHECK_NCCL(ncclGroupStart());
  Status status;
  int64_t offset = 0;
  for (int r = 0; r < size() && status.ok(); ++r) {
    char* block = static_cast<char*>(recv.data) + offset * elem;
    offset += counts[r];
    if (counts[r] == 0) continue;
    status = broadcast(r == rank() ? send.data : block, block, counts[r], r);
  }
  // Closed even after a failure: an open group would swallow this thread's later
  // NCCL calls.
  const ncclResult_t ended = ncclGroupEnd();
  BRAID_RETURN_IF_ERROR(status);
  if (ended != ncclSuccess) return NcclError(ended, "ncclGroupEnd()", __FILE__, __LINE__);
  return Status::OK();
}

Status NcclBackend::Allgatherv(const BufferView& send, const BufferView& recv,
                               const std::vector<int64_t>& counts) {
  BRAID_RETURN_IF_ERROR(CheckUsable());
  BRAID_RETURN_IF_ERROR(CheckAllgatherv(send, recv, counts, rank(), size(), rules()));
  ncclDataType_t type;  // a dtype NCCL lacks is refused before Run would abort
  BRAID_RETURN_IF_ERROR(NcclType(recv.dtype, &type));
  if (recv.count == 0) return Status::OK();
  return Run(Describe("allgatherv", recv.count, recv.dtype), [&]() -> Status {
    BRAID_RETURN_IF_ERROR(OrderAfter(send.stream));
    BRAID_RETURN_IF_ERROR(OrderAfter(recv.stream));
    return EnqueueAllgatherv(send, recv, counts);
  });
}

Status NcclBackend::Broadcast(const BufferView& buf, int root) {
  BRAID_RETURN_IF_ERROR(CheckUsable());
  BRAID_RETURN_IF_ERROR(CheckBuffer(buf, rules(), "broadcast"));
  if (root < 0 || root >= size()) {
    return InvalidArgument("nccl broadcast: root " + std::to_string(root) + " outside [0, " +
                           std::to_string(size()) + ")");
  }
  ncclDataType_t type;
  BRAID_RETURN_IF_ERROR(NcclType(buf.dtype, &type));
  if (buf.count == 0) return Status::OK();
  const std::string what =
      Describe("broadcast", buf.count, buf.dtype) + " from rank " + std::to_string(root);
  return Run(what, [&]() -> Status {
    BRAID_RETURN_IF_ERROR(OrderAfter(buf.stream));
    BRAID_CHECK_NCCL(ncclBroadcast(buf.data, buf.data, static_cast<size_t>(buf.count), type, root,
                                   context_->comm(), stream()));
    return Status::OK();
  });
}

// Returns once every rank has entered: the allreduce cannot finish before all of
// them contribute, and Run waits for it to finish.
Status NcclBackend::Barrier() {
  BRAID_RETURN_IF_ERROR(CheckUsable());
  return Run("barrier", [&]() -> Status {
    BRAID_CHECK_NCCL(ncclAllReduce(barrier_->data(), barrier_->data(), 1, ncclInt32, ncclSum,
                                   context_->comm(), stream()));
    return Status::OK();
  });
}

// Receives, then sends, of every non-empty message in one group, so that NCCL
// runs them together and no rank's sends wait for its own receives. A peer posts
// the same empty messages, and skips them too.
Status NcclBackend::EnqueueNeighborExchange(const std::vector<PeerBuffer>& sends,
                                            const std::vector<PeerBuffer>& recvs) {
  BRAID_CHECK_NCCL(ncclGroupStart());
  auto post = [&](const PeerBuffer& m, bool send) -> Status {
    const size_t bytes = static_cast<size_t>(m.buf.bytes());
    if (bytes == 0) return Status::OK();
    if (send) {
      BRAID_CHECK_NCCL(ncclSend(m.buf.data, bytes, ncclUint8, m.peer, context_->comm(), stream()));
    } else {
      BRAID_CHECK_NCCL(ncclRecv(m.buf.data, bytes, ncclUint8, m.peer, context_->comm(), stream()));
    }
    return Status::OK();
  };
  Status status;
  for (size_t i = 0; i < recvs.size() && status.ok(); ++i) status = post(recvs[i], false);
  for (size_t i = 0; i < sends.size() && status.ok(); ++i) status = post(sends[i], true);
  // Closed even after a failure, as in EnqueueAllgatherv.
  const ncclResult_t ended = ncclGroupEnd();
  BRAID_RETURN_IF_ERROR(status);
  if (ended != ncclSuccess) return NcclError(ended, "ncclGroupEnd()", __FILE__, __LINE__);
  return Status::OK();
}

Status NcclBackend::NeighborExchange(const std::vector<PeerBuffer>& sends,
                                     const std::vector<PeerBuffer>& recvs) {
  BRAID_RETURN_IF_ERROR(CheckUsable());
  std::vector<BufferView> buffers;
  int64_t bytes = 0;
  for (bool send : {true, false}) {
    for (const PeerBuffer& m : send ? sends : recvs) {
      const std::string what = "neighbour exchange: " + DescribePeerMessage(m, send);
      BRAID_RETURN_IF_ERROR(CheckBuffer(m.buf, rules(), what.c_str()));
      buffers.push_back(m.buf);
      bytes += m.buf.bytes();
    }
  }
  BRAID_RETURN_IF_ERROR(CheckPeerMessages(sends, recvs, size(), "nccl"));
  if (bytes == 0) return Status::OK();
  const std::string what = "neighbour exchange of " + std::to_string(bytes) + " bytes in " +
                           std::to_string(sends.size()) + " sends and " +
                           std::to_string(recvs.size()) + " receives";
  return Run(what, [&]() -> Status {
    BRAID_RETURN_IF_ERROR(OrderAfterAll(buffers));
    return EnqueueNeighborExchange(sends, recvs);
  });
}

}  // namespace nccl
}  // namespace braid
