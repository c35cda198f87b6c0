#include "collectives/staged/staged_backend.h"

#include <string>
#include <vector>

#include "collectives/cuda/batched_copy.h"
#include "collectives/cuda/device_args.h"
#include "collectives/cuda/group_copy.h"
#include "collectives/peer_messages.h"
#include "collectives/staged/staging_pipeline.h"

namespace braid {
namespace staged {
namespace {

constexpr const char* kName = "mpi (host-staged)";

class StagedBackend : public Backend {
 public:
  StagedBackend(Backend* host, const WorldInfo& world, std::unique_ptr<StagingPipeline> pipeline,
                std::unique_ptr<cuda::BatchedCopier> copier)
      : host_(host),
        rank_(world.rank),
        size_(world.size),
        pipeline_(std::move(pipeline)),
        copier_(std::move(copier)) {}

  const char* name() const override { return kName; }
  bool CanHandle(int device) const override { return device == pipeline_->device(); }

  // The pinned host buffer every collective stages through, grown now rather
  // than inside the collective, where a failure would leave the other ranks in it.
  Status Prepare(int64_t bytes) override {
    char* host = nullptr;
    return pipeline_->HostBuffer(bytes, &host);
  }

  Status Allreduce(const BufferView& buf, ReduceOp op) override {
    return AllreduceOne(buf, op, ReduceScaling());
  }

  Status AllreduceMany(const std::vector<BufferView>& buffers, ReduceOp op,
                       const BufferView& staging) override {
    return AllreduceScaled(buffers, op, staging, ReduceScaling());
  }

  // A group is packed into `staging` on the device (one kernel launch, with the
  // prescale), reduced there as one buffer, and unpacked (with the postscale) after
  // the last segment has come back.
  Status AllreduceScaled(const std::vector<BufferView>& buffers, ReduceOp op,
                         const BufferView& staging, const ReduceScaling& scaling) override {
    if (buffers.empty()) return Status::OK();
    if (buffers.size() == 1) return AllreduceOne(buffers[0], op, scaling);
    int64_t total = 0;
    BRAID_RETURN_IF_ERROR(cuda::CheckGroup(buffers, staging, rules(), &total));
    if (total == 0) return Status::OK();
    for (const BufferView& b : buffers) BRAID_RETURN_IF_ERROR(pipeline_->OrderAfter(b.stream));
    BRAID_RETURN_IF_ERROR(pipeline_->OrderAfter(staging.stream));
    const DataType dtype = buffers[0].dtype;
    char* packed = static_cast<char*>(staging.data);
    Status status = cuda::CopyGroup(*copier_, buffers, packed, cuda::GroupCopy::kPack,
                                    pipeline_->to_host(), cuda::PreScaling(scaling));
    const int64_t count = total / static_cast<int64_t>(DataTypeSize(dtype));
    const Status reduced = pipeline_->Allreduce(host_, packed, count, dtype, op);
    if (status.ok()) status = reduced;
    if (status.ok()) {
      status = cuda::CopyGroup(*copier_, buffers, packed, cuda::GroupCopy::kUnpack,
                               pipeline_->to_device(), cuda::PostScaling(scaling));
    }
    return Conclude(status);
  }

  Status Allgatherv(const BufferView& send, const BufferView& recv,
                    const std::vector<int64_t>& counts) override {
    BRAID_RETURN_IF_ERROR(cuda::CheckAllgatherv(send, recv, counts, rank_, size_, rules()));
    if (recv.count == 0) return Status::OK();
    const int64_t elem = static_cast<int64_t>(DataTypeSize(recv.dtype));
    int64_t before = 0;
    for (int r = 0; r < rank_; ++r) before += counts[r];
    char* host = nullptr;
    BRAID_RETURN_IF_ERROR(pipeline_->HostBuffer(recv.bytes(), &host));
    BRAID_RETURN_IF_ERROR(pipeline_->OrderAfter(send.stream));
    BRAID_RETURN_IF_ERROR(pipeline_->OrderAfter(recv.stream));
    Status status = pipeline_->CopyToHost(send.data, host + before * elem, send.bytes());
    BufferView host_recv{host, recv.count, recv.dtype, kCpuDevice, nullptr};
    BufferView host_send = host_recv.Slice(before, counts[rank_]);
    BRAID_RETURN_IF_ERROR(host_->Allgatherv(host_send, host_recv, counts));
    if (status.ok()) status = pipeline_->CopyToDevice(host, recv.data, recv.bytes());
    return Conclude(status);
  }

  Status Broadcast(const BufferView& buf, int root) override {
    BRAID_RETURN_IF_ERROR(cuda::CheckBuffer(buf, rules(), "broadcast"));
    if (root < 0 || root >= size_) {
      return InvalidArgument(std::string(kName) + " broadcast: root " + std::to_string(root) +
                             " outside [0, " + std::to_string(size_) + ")");
    }
    if (buf.count == 0) return Status::OK();
    char* host = nullptr;
    BRAID_RETURN_IF_ERROR(pipeline_->HostBuffer(buf.bytes(), &host));
    BRAID_RETURN_IF_ERROR(pipeline_->OrderAfter(buf.stream));
    Status status;
    if (rank_ == root) status = pipeline_->CopyToHost(buf.data, host, buf.bytes());
    BRAID_RETURN_IF_ERROR(
        host_->Broadcast(BufferView{host, buf.count, buf.dtype, kCpuDevice}, root));
    if (status.ok() && rank_ != root) status = pipeline_->CopyToDevice(host, buf.data, buf.bytes());
    return Conclude(status);
  }

  Status Barrier() override { return host_->Barrier(); }

  // Through the pinned buffer (see Stage): the sends are copied to the host and
  // waited for, the host backend exchanges, the receives are copied back. After a
  // CUDA failure the host exchange still runs (the peers are in it).
  Status NeighborExchange(const std::vector<PeerBuffer>& sends,
                          const std::vector<PeerBuffer>& recvs) override {
    BRAID_RETURN_IF_ERROR(CheckMessages(sends, recvs));
    Staged staged;
    const int64_t total = Stage(sends, recvs, &staged);
    if (total == 0) return Status::OK();
    char* host = nullptr;
    BRAID_RETURN_IF_ERROR(pipeline_->HostBuffer(total, &host));
    std::vector<PeerBuffer> host_sends = sends, host_recvs = recvs;
    for (size_t i = 0; i < sends.size(); ++i) host_sends[i].buf = staged.At(host, sends[i], i, 0);
    for (size_t i = 0; i < recvs.size(); ++i) host_recvs[i].buf = staged.At(host, recvs[i], i, 1);
    Status status;
    const void* ordered = nullptr;  // the last stream ordered after, once there is one
    for (const std::vector<PeerBuffer>* list : {&sends, &recvs}) {
      for (const PeerBuffer& m : *list) {
        if (!status.ok() || (ordered != nullptr && m.buf.stream == ordered)) continue;
        status = pipeline_->OrderAfter(m.buf.stream);
        ordered = m.buf.stream;
      }
    }
    for (size_t i = 0; i < sends.size() && status.ok(); ++i) {
      if (!staged.copy[i]) continue;
      status =
          pipeline_->QueueToHost(sends[i].buf.data, host_sends[i].buf.data, sends[i].buf.bytes());
    }
    if (status.ok()) status = pipeline_->WaitToHost();
    BRAID_RETURN_IF_ERROR(host_->NeighborExchange(host_sends, host_recvs));
    // The copies back wait for the receive buffers' producers too (OrderAfter above).
    if (status.ok()) status = pipeline_->DeviceAfterHost();
    for (size_t i = 0; i < recvs.size() && status.ok(); ++i) {
      status =
          pipeline_->CopyToDevice(host_recvs[i].buf.data, recvs[i].buf.data, recvs[i].buf.bytes());
    }
    return Conclude(status);
  }

 private:
  cuda::BufferRules rules() const { return {kName, pipeline_->device(), true}; }

  // One buffer in place: scaled on the device before its first segment leaves and
  // after its last one is back. Every segment's host collective runs even after a
  // CUDA failure here (the ranks stay in step).
  Status AllreduceOne(const BufferView& buf, ReduceOp op, const ReduceScaling& scaling) {
    BRAID_RETURN_IF_ERROR(cuda::CheckBuffer(buf, rules(), "allreduce"));
    if (buf.count == 0) return Status::OK();
    BRAID_RETURN_IF_ERROR(pipeline_->OrderAfter(buf.stream));
    Status status =
        cuda::ScaleInPlace(*copier_, buf, cuda::PreScaling(scaling), pipeline_->to_host());
    const Status reduced = pipeline_->Allreduce(host_, buf.data, buf.count, buf.dtype, op);
    if (status.ok()) status = reduced;
    if (status.ok()) {
      status =
          cuda::ScaleInPlace(*copier_, buf, cuda::PostScaling(scaling), pipeline_->to_device());
    }
    return Conclude(status);
  }

  Status CheckMessages(const std::vector<PeerBuffer>& sends,
                       const std::vector<PeerBuffer>& recvs) const {
    for (bool send : {true, false}) {
      for (const PeerBuffer& m : send ? sends : recvs) {
        const std::string what = "neighbour exchange: " + DescribePeerMessage(m, send);
        BRAID_RETURN_IF_ERROR(cuda::CheckBuffer(m.buf, rules(), what.c_str()));
      }
    }
    return CheckPeerMessages(sends, recvs, size_, kName);
  }

  // Where each message sits in the pinned buffer: offset[0] for the sends,
  // offset[1] for the receives, back to back (unpadded: the messages' bytes are
  // what Prepare was given). A buffer sent to several peers (a gossip step sends
  // one tensor to all) is staged once: copy[i] says whether send i is the first of
  // its buffer, the one copied.
  struct Staged {
    std::vector<int64_t> offset[2];
    std::vector<bool> copy;

    BufferView At(char* host, const PeerBuffer& m, size_t i, int direction) const {
      return BufferView{host + offset[direction][i], m.buf.count, m.buf.dtype, kCpuDevice};
    }
  };

  // Fills `staged` and returns the bytes of pinned memory the messages take.
  static int64_t Stage(const std::vector<PeerBuffer>& sends, const std::vector<PeerBuffer>& recvs,
                       Staged* staged) {
    int64_t total = 0;
    auto place = [&total](const PeerBuffer& m) {
      const int64_t at = total;
      total += m.buf.bytes();
      return at;
    };
    staged->copy.assign(sends.size(), true);
    for (size_t i = 0; i < sends.size(); ++i) {
      size_t j = 0;
      while (j < i && (sends[j].buf.data != sends[i].buf.data ||
                       sends[j].buf.bytes() != sends[i].buf.bytes())) {
        ++j;
      }
      staged->copy[i] = j == i;
      staged->offset[0].push_back(j < i ? staged->offset[0][j] : place(sends[i]));
    }
    for (const PeerBuffer& m : recvs) staged->offset[1].push_back(place(m));
    return total;
  }

  // Waits for both copy streams; the first error wins.
  Status Conclude(const Status& status) {
    const Status finished = pipeline_->Finish();
    return status.ok() ? finished : status;
  }

  Backend* host_;
  int rank_;
  int size_;
  std::unique_ptr<StagingPipeline> pipeline_;
  std::unique_ptr<cuda::BatchedCopier> copier_;
};

}  // namespace

Status CreateStagedBackend(Backend* host, const WorldInfo& world, int device,
                           const StagedOptions& options, std::unique_ptr<Backend>* out) {
  if (host == nullptr) return InvalidArgument("staged: no host backend");
  std::unique_ptr<StagingPipeline> pipeline;
  BRAID_RETURN_IF_ERROR(StagingPipeline::Create(device, options.segment_bytes, &pipeline));
  std::unique_ptr<cuda::BatchedCopier> copier;
  BRAID_RETURN_IF_ERROR(cuda::BatchedCopier::Create(device, &copier));
  out->reset(new StagedBackend(host, world, std::move(pipeline), std::move(copier)));
  return Status::OK();
}

}  // namespace staged
}  // namespace braid
