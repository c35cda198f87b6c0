#include "collectives/mpi/mpi_ring.h"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "collectives/cpu/reduce.h"
#include "collectives/mpi/mpi_check.h"

namespace braid {
namespace mpi {
namespace {

constexpr int kReduceScatterTag = 1;
constexpr int kAllgatherTag = 2;
constexpr int64_t kSlotAlign = 64;
constexpr int64_t kPageBytes = 4096;

int64_t Segments(int64_t count, int64_t seg_elems) {
  return (count + seg_elems - 1) / seg_elems;
}

// Allocates and touches every page now, so no transfer ever pays a first-touch fault.
char* AllocatePrefaulted(int64_t bytes) {
  const size_t rounded = static_cast<size_t>((bytes + kPageBytes - 1) / kPageBytes * kPageBytes);
  void* p = std::aligned_alloc(kPageBytes, rounded);
  if (p != nullptr) std::memset(p, 0, rounded);
  return static_cast<char*>(p);
}

}  // namespace

MpiRing::MpiRing(MPI_Comm comm, const RingOptions& options)
    : comm_(comm), options_(options), scratch_(nullptr, &std::free) {
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
  left_ = (rank_ + size_ - 1) % size_;
  right_ = (rank_ + 1) % size_;
  options_.depth = std::max(1, options_.depth);
  options_.max_piece_elements = std::max<int64_t>(1, options_.max_piece_elements);
  if (size_ == 1) return;  // a ring of one never communicates
  const int64_t per_slot = std::max<int64_t>(options_.scratch_bytes, 0) / options_.depth;
  slot_bytes_ = std::min(options_.segment_bytes, per_slot) / kSlotAlign * kSlotAlign;
  slot_bytes_ = std::max(slot_bytes_, kSlotAlign);
  scratch_size_ = slot_bytes_ * options_.depth;
  scratch_.reset(AllocatePrefaulted(scratch_size_));
  if (!scratch_) scratch_size_ = 0;
  slots_.assign(options_.depth, MPI_REQUEST_NULL);
}

MpiRing::Chunk MpiRing::ChunkAt(char* base, int64_t count, size_t elem, int index) const {
  const int64_t quotient = count / size_;
  const int64_t remainder = count % size_;
  const int64_t start = index * quotient + std::min<int64_t>(index, remainder);
  const int64_t length = quotient + (index < remainder ? 1 : 0);
  return Chunk{base + start * static_cast<int64_t>(elem), length};
}

// Elements per message: bounded by the byte budget, the piece cap and MPI's int count.
int64_t MpiRing::SegmentElems(size_t elem, int64_t segment_bytes) const {
  int64_t n = segment_bytes / static_cast<int64_t>(elem);
  n = std::min(n, options_.max_piece_elements);
  n = std::min<int64_t>(n, INT_MAX / static_cast<int64_t>(elem));
  return std::max<int64_t>(n, 1);
}

Status MpiRing::Allreduce(void* data, int64_t count, DataType dtype, ReduceOp op) {
  if (size_ == 1 || count <= 0) return Status::OK();
  if (!scratch_) return Internal("ring allreduce has no scratch memory");
  const size_t elem = DataTypeSize(dtype);
  char* base = static_cast<char*>(data);
  auto at = [this](int i) { return ((i % size_) + size_) % size_; };
  for (int s = 0; s < size_ - 1; ++s) {
    const Chunk send = ChunkAt(base, count, elem, at(rank_ - s));
    const Chunk recv = ChunkAt(base, count, elem, at(rank_ - s - 1));
    BRAID_RETURN_IF_ERROR(ReduceStep(send, recv, elem, dtype, op));
  }
  for (int s = 0; s < size_ - 1; ++s) {
    const Chunk send = ChunkAt(base, count, elem, at(rank_ + 1 - s));
    const Chunk recv = ChunkAt(base, count, elem, at(rank_ - s));
    BRAID_RETURN_IF_ERROR(CopyStep(send, recv, elem));
  }
  return Status::OK();
}

Status MpiRing::PostSends(const Chunk& send, int64_t seg_elems, size_t elem, int tag) {
  const int64_t n = Segments(send.count, seg_elems);
  sends_.resize(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) {
    const int64_t elems = std::min(seg_elems, send.count - k * seg_elems);
    const int bytes = static_cast<int>(elems * static_cast<int64_t>(elem));
    char* at = send.data + k * seg_elems * static_cast<int64_t>(elem);
    BRAID_CHECK_MPI(MPI_Isend(at, bytes, MPI_BYTE, right_, tag, comm_, &sends_[k]));
  }
  return Status::OK();
}

// Segment k of the incoming chunk lands in scratch slot k % depth; the slot is
// re-posted for segment k + depth as soon as segment k has been reduced.
Status MpiRing::ReduceStep(const Chunk& send, const Chunk& recv, size_t elem, DataType dtype,
                           ReduceOp op) {
  const int64_t seg = SegmentElems(elem, slot_bytes_);
  const int64_t nrecv = Segments(recv.count, seg);
  const int depth = options_.depth;
  auto post = [&](int64_t k) {
    const int64_t elems = std::min(seg, recv.count - k * seg);
    return MPI_Irecv(Slot(k), static_cast<int>(elems * static_cast<int64_t>(elem)), MPI_BYTE, left_,
                     kReduceScatterTag, comm_, &slots_[k % depth]);
  };
  for (int64_t k = 0; k < std::min<int64_t>(depth, nrecv); ++k) BRAID_CHECK_MPI(post(k));
  BRAID_RETURN_IF_ERROR(PostSends(send, seg, elem, kReduceScatterTag));
  for (int64_t k = 0; k < nrecv; ++k) {
    BRAID_CHECK_MPI(MPI_Wait(&slots_[k % depth], MPI_STATUS_IGNORE));
    const int64_t elems = std::min(seg, recv.count - k * seg);
    cpu::ReduceInto(recv.data + k * seg * static_cast<int64_t>(elem), Slot(k), elems, dtype, op);
    if (k + depth < nrecv) BRAID_CHECK_MPI(post(k + depth));
  }
  BRAID_CHECK_MPI(MPI_Waitall(static_cast<int>(sends_.size()), sends_.data(), MPI_STATUSES_IGNORE));
  return Status::OK();
}

// Allgather step: the incoming chunk is final, so it is received in place.
Status MpiRing::CopyStep(const Chunk& send, const Chunk& recv, size_t elem) {
  const int64_t seg = SegmentElems(elem, options_.gather_segment_bytes);
  const int64_t nrecv = Segments(recv.count, seg);
  recvs_.resize(static_cast<size_t>(nrecv));
  for (int64_t k = 0; k < nrecv; ++k) {
    const int64_t elems = std::min(seg, recv.count - k * seg);
    char* at = recv.data + k * seg * static_cast<int64_t>(elem);
    BRAID_CHECK_MPI(MPI_Irecv(at, static_cast<int>(elems * static_cast<int64_t>(elem)), MPI_BYTE,
                              left_, kAllgatherTag, comm_, &recvs_[k]));
  }
  BRAID_RETURN_IF_ERROR(PostSends(send, seg, elem, kAllgatherTag));
  BRAID_CHECK_MPI(MPI_Waitall(static_cast<int>(recvs_.size()), recvs_.data(), MPI_STATUSES_IGNORE));
  BRAID_CHECK_MPI(MPI_Waitall(static_cast<int>(sends_.size()), sends_.data(), MPI_STATUSES_IGNORE));
  return Status::OK();
}

}  // namespace mpi
}  // namespace braid
