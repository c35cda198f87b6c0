#include "collectives/shm/shm_backend.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "collectives/host_checks.h"

namespace braid {
namespace shm {

int64_t ChooseSlotBytes(int ranks, int64_t fusion_bytes, int64_t forced_bytes) {
  constexpr int64_t kPage = 4096;
  if (forced_bytes > 0) return (forced_bytes + 63) / 64 * 64;  // whole cache lines
  const int64_t per_rank = fusion_bytes / std::max(ranks, 1);
  const int64_t bounded = std::min(kMaxSlotBytes, std::max(kMinSlotBytes, per_rank));
  return (bounded + kPage - 1) / kPage * kPage;
}

ShmBackend::ShmBackend(std::unique_ptr<ShmSegment> segment, int rank, int size,
                       Backend* point_to_point)
    : segment_(std::move(segment)),
      rank_(rank),
      size_(size),
      point_to_point_(point_to_point),
      sync_(segment_->controls(), rank, size) {
  sync_.Register(static_cast<int32_t>(getpid()));
}

Status ShmBackend::Step() {
  if (broken_.ok()) broken_ = sync_.ArriveAndWait();
  return broken_;
}

Status ShmBackend::CheckBuffer(const BufferView& buf, const char* what) const {
  if (!broken_.ok()) return broken_;
  return CheckHostBuffer(buf, what, "the shm backend");
}

// The ops of the MPI backend: sum, min, max, product for every dtype, and the
// average of float16 / bfloat16 alone.
Status ShmBackend::CheckOp(DataType dtype, ReduceOp op) const {
  if (!IsValidReduceOp(static_cast<int32_t>(op)) ||
      (op == ReduceOp::kAverage && !IsSixteenBitFloat(dtype))) {
    return InvalidArgument(std::string("reduce op ") + ReduceOpName(op) + " of " +
                           DataTypeName(dtype) +
                           " is not reduced by the shm backend; sum and divide instead");
  }
  return Status::OK();
}

Status ShmBackend::Broadcast(const BufferView& buf, int root) {
  BRAID_RETURN_IF_ERROR(CheckBuffer(buf, "broadcast"));
  BRAID_RETURN_IF_ERROR(CheckBroadcastRoot(root, size_));
  char* data = static_cast<char*>(buf.data);
  const int64_t bytes = buf.bytes();
  // The whole half of the segment carries each step: nobody else writes during a
  // broadcast.
  const int64_t step = segment_->layout().HalfBytes();
  for (int64_t offset = 0; size_ > 1 && offset < bytes; offset += step) {
    const int64_t n = std::min(step, bytes - offset);
    char* shared = segment_->HalfBase(NextHalf());
    if (rank_ == root) std::memcpy(shared, data + offset, static_cast<size_t>(n));
    BRAID_RETURN_IF_ERROR(Step());
    if (rank_ != root) std::memcpy(data + offset, shared, static_cast<size_t>(n));
  }
  return Status::OK();
}

// Every rank's block in slot-sized rounds: each rank copies the next slot of its
// own block into its slot, and after the step copies the others' out.
Status ShmBackend::Allgatherv(const BufferView& send, const BufferView& recv,
                              const std::vector<int64_t>& counts) {
  if (!broken_.ok()) return broken_;
  BRAID_RETURN_IF_ERROR(CheckHostAllgatherv(send, recv, counts, rank_, size_, "the shm backend"));
  const int64_t elem = static_cast<int64_t>(DataTypeSize(recv.dtype));
  std::vector<int64_t> starts(size_), sizes(size_);
  int64_t offset = 0, largest = 0;
  for (int r = 0; r < size_; ++r) {
    starts[r] = offset * elem;
    sizes[r] = counts[r] * elem;
    largest = std::max(largest, sizes[r]);
    offset += counts[r];
  }
  char* out = static_cast<char*>(recv.data);
  if (send.data != out + starts[rank_] && sizes[rank_] > 0) {
    std::memcpy(out + starts[rank_], send.data, static_cast<size_t>(sizes[rank_]));
  }
  if (size_ == 1) return Status::OK();
  for (int64_t done = 0; done < largest; done += slot_bytes()) {
    BRAID_RETURN_IF_ERROR(GatherRound(starts, sizes, out, done));
  }
  return Status::OK();
}

Status ShmBackend::GatherRound(const std::vector<int64_t>& starts,
                               const std::vector<int64_t>& sizes, char* recv, int64_t offset) {
  const int half = NextHalf();
  auto piece = [&](int r) {
    return std::max<int64_t>(0, std::min(slot_bytes(), sizes[r] - offset));
  };
  if (piece(rank_) > 0) {
    std::memcpy(segment_->Slot(half, rank_), recv + starts[rank_] + offset,
                static_cast<size_t>(piece(rank_)));
  }
  BRAID_RETURN_IF_ERROR(Step());
  for (int r = 0; r < size_; ++r) {
    if (r == rank_ || piece(r) == 0) continue;
    std::memcpy(recv + starts[r] + offset, segment_->Slot(half, r), static_cast<size_t>(piece(r)));
  }
  return Status::OK();
}

Status ShmBackend::Barrier() {
  if (size_ == 1) return broken_;
  return Step();
}

Status ShmBackend::NeighborExchange(const std::vector<PeerBuffer>& sends,
                                    const std::vector<PeerBuffer>& recvs) {
  if (!broken_.ok()) return broken_;
  return point_to_point_->NeighborExchange(sends, recvs);
}

}  // namespace shm
}  // namespace braid
