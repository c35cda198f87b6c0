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
  const int64_t slots = static_cast<int64_t>(size_ - 1) * options_.depth;
  const int64_t per_slot = std::max<int64_t>(options_.scratch_bytes, 0) / slots;
  slot_bytes_ = std::min(options_.segment_bytes, per_slot) / kSlotAlign * kSlotAlign;
  slot_bytes_ = std::max(slot_bytes_, kSlotAlign);
  scratch_size_ = slot_bytes_ * slots;
  scratch_.reset(AllocatePrefaulted(scratch_size_));
  if (!scratch_) scratch_size_ = 0;
  slots_.assign(static_cast<size_t>(slots), MPI_REQUEST_NULL);
  arrived_.resize(static_cast<size_t>(size_ - 1));
}

// Chunk sizes differ by at most one element; the first count % size are longer.
// Each chunk is cut into segments of at most plan_.seg elements that never cross
// a piece boundary. Every rank cuts the same pieces the same way.
void MpiRing::CutSegments(const std::vector<Piece>& pieces) {
  chunk_segments_.resize(size_);
  const int64_t quotient = plan_.count / size_;
  const int64_t remainder = plan_.count % size_;
  size_t piece = 0;
  int64_t used = 0;  // elements of pieces[piece] already assigned
  for (int c = 0; c < size_; ++c) {
    std::vector<Piece>& segments = chunk_segments_[c];
    segments.clear();
    int64_t left = quotient + (c < remainder ? 1 : 0);
    while (left > 0) {
      while (pieces[piece].count == used) {
        ++piece;
        used = 0;
      }
      const int64_t n = std::min({left, plan_.seg, pieces[piece].count - used});
      segments.push_back(Piece{pieces[piece].data + used * plan_.elem, n});
      used += n;
      left -= n;
    }
  }
}

MpiRing::Chunk MpiRing::ChunkAt(int index) const {
  index = ((index % size_) + size_) % size_;
  return Chunk{&chunk_segments_[index]};
}

Status MpiRing::Allreduce(void* data, int64_t count, DataType dtype, ReduceOp op) {
  single_.assign(1, Piece{static_cast<char*>(data), count});
  return Allreduce(single_, dtype, op);
}

Status MpiRing::Allreduce(const std::vector<Piece>& pieces, DataType dtype, ReduceOp op) {
  int64_t count = 0;
  for (const Piece& p : pieces) count += p.count;
  if (size_ == 1 || count <= 0) return Status::OK();
  if (!scratch_) return Internal("ring allreduce has no scratch memory");
  plan_.count = count;
  plan_.elem = static_cast<int64_t>(DataTypeSize(dtype));
  plan_.dtype = dtype;
  // Min and max are exact in the 16-bit formats: only sums and products round, and
  // at two ranks the ring's one reduction is already the one rounding. An average
  // is a sum scaled before it is rounded, even at two ranks.
  const bool average = op == ReduceOp::kAverage;
  plan_.op = average ? ReduceOp::kSum : op;
  plan_.scale = average ? static_cast<float>(1.0 / size_) : 1.0f;
  plan_.direct = IsSixteenBitFloat(dtype) &&
                 (average || (size_ > 2 && (op == ReduceOp::kSum || op == ReduceOp::kProduct)));
  if (average && !plan_.direct)
    return InvalidArgument("ring allreduce: only 16-bit floats average");
  // Elements per message: bounded by a scratch slot, the piece cap and MPI's int.
  plan_.seg = std::min({slot_bytes_ / plan_.elem, options_.max_piece_elements,
                        static_cast<int64_t>(INT_MAX) / plan_.elem});
  plan_.seg = std::max<int64_t>(plan_.seg, 1);
  CutSegments(pieces);
  sends_.clear();
  if (plan_.direct) {
    BRAID_RETURN_IF_ERROR(DirectReduceScatter());
  } else {
    const Chunk own = ChunkAt(rank_);
    for (int64_t k = 0; k < Segments(own); ++k) {
      BRAID_RETURN_IF_ERROR(SendSegment(own, k, kReduceScatterTag, right_));
    }
    for (int s = 0; s < size_ - 1; ++s) BRAID_RETURN_IF_ERROR(ReduceStep(s));
  }
  for (int s = 0; s < size_ - 1; ++s) BRAID_RETURN_IF_ERROR(GatherStep(s));
  BRAID_CHECK_MPI(MPI_Waitall(static_cast<int>(sends_.size()), sends_.data(), MPI_STATUSES_IGNORE));
  return Status::OK();
}

Status MpiRing::SendSegment(const Chunk& chunk, int64_t k, int tag, int to) {
  const int bytes = static_cast<int>(SegmentCount(chunk, k) * plan_.elem);
  sends_.push_back(MPI_REQUEST_NULL);
  BRAID_CHECK_MPI(
      MPI_Isend(SegmentData(chunk, k), bytes, MPI_BYTE, to, tag, comm_, &sends_.back()));
  return Status::OK();
}

Status MpiRing::PostSlot(const Chunk& chunk, int64_t k) {
  const int bytes = static_cast<int>(SegmentCount(chunk, k) * plan_.elem);
  BRAID_CHECK_MPI(MPI_Irecv(Slot(k), bytes, MPI_BYTE, left_, kReduceScatterTag, comm_,
                            &slots_[k % options_.depth]));
  return Status::OK();
}

// Reduce-scatter step s: segment k of chunk rank-s-1 arrives in scratch slot
// k % depth, is reduced into place and leaves at once: to the right as step s+1's
// data, or, after the last step, as the allgather's first message.
Status MpiRing::ReduceStep(int s) {
  const Chunk chunk = ChunkAt(rank_ - s - 1);
  const bool last = s == size_ - 2;
  const int64_t n = Segments(chunk);
  const int depth = options_.depth;
  if (last) {
    reduce_sends_ = sends_.size();
    gathers_[0].assign(static_cast<size_t>(Segments(ChunkAt(rank_))), MPI_REQUEST_NULL);
  }
  for (int64_t k = 0; k < std::min<int64_t>(depth, n); ++k) {
    BRAID_RETURN_IF_ERROR(PostSlot(chunk, k));
  }
  for (int64_t k = 0; k < n; ++k) {
    BRAID_CHECK_MPI(MPI_Wait(&slots_[k % depth], MPI_STATUS_IGNORE));
    cpu::ReduceInto(SegmentData(chunk, k), Slot(k), SegmentCount(chunk, k), plan_.dtype, plan_.op);
    if (k + depth < n) BRAID_RETURN_IF_ERROR(PostSlot(chunk, k + depth));
    if (last) {
      BRAID_RETURN_IF_ERROR(EndReduceScatter(chunk, k));
    } else {
      BRAID_RETURN_IF_ERROR(SendSegment(chunk, k, kReduceScatterTag, right_));
    }
  }
  if (last) return EndReduceScatter(chunk, n);
  return Status::OK();
}

// Segment k of the owned chunk is final: it leaves as the allgather's first
// message, and receive k of the allgather's first step is posted. Called with k ==
// Segments(owned) once more at the end, to post the receives for this rank's own
// chunk beyond the owned chunk's segments.
Status MpiRing::EndReduceScatter(const Chunk& owned, int64_t k) {
  if (k < Segments(owned)) {
    BRAID_RETURN_IF_ERROR(SendSegment(owned, k, kAllgatherTag, right_));
    return PostFirstGather(k);
  }
  for (int64_t j = k; j < static_cast<int64_t>(gathers_[0].size()); ++j) {
    BRAID_RETURN_IF_ERROR(PostFirstGather(j));
  }
  return Status::OK();
}

// The direct reduce-scatter (16-bit floats, see the header). The owner of chunk c
// is rank c - 1, as after the ring's reduce-scatter, so the allgather is the same.
// This rank's own region, chunk rank_, leaves first: the allgather's first
// receives land there once sends_[k] has completed (PostFirstGather).
Status MpiRing::DirectReduceScatter() {
  const int depth = options_.depth;
  for (int j = 0; j < size_; ++j) {
    if (j == 1) continue;  // chunk rank_ + 1 is this rank's own to reduce
    const Chunk chunk = ChunkAt(rank_ + j);
    const int owner = (rank_ + j - 1 + size_) % size_;
    for (int64_t k = 0; k < Segments(chunk); ++k) {
      BRAID_RETURN_IF_ERROR(SendSegment(chunk, k, kReduceScatterTag, owner));
    }
  }
  reduce_sends_ = sends_.size();
  gathers_[0].assign(static_cast<size_t>(Segments(ChunkAt(rank_))), MPI_REQUEST_NULL);
  const Chunk owned = ChunkAt(rank_ + 1);
  const int64_t n = Segments(owned);
  for (int64_t k = 0; k < std::min<int64_t>(depth, n); ++k) {
    BRAID_RETURN_IF_ERROR(PostPeerSlots(owned, k));
  }
  for (int64_t k = 0; k < n; ++k) {
    for (int i = 0; i < size_ - 1; ++i) {
      BRAID_CHECK_MPI(MPI_Wait(&slots_[i * depth + k % depth], MPI_STATUS_IGNORE));
      arrived_[i] = PeerSlot(i, k);
    }
    cpu::ReduceHalvesRounded(SegmentData(owned, k), arrived_.data(), size_ - 1,
                             SegmentCount(owned, k), plan_.dtype, plan_.op, plan_.scale);
    if (k + depth < n) BRAID_RETURN_IF_ERROR(PostPeerSlots(owned, k + depth));
    BRAID_RETURN_IF_ERROR(EndReduceScatter(owned, k));
  }
  return EndReduceScatter(owned, n);
}

// Receives segment k of the owned chunk from every peer, each into its own slot.
Status MpiRing::PostPeerSlots(const Chunk& chunk, int64_t k) {
  const int bytes = static_cast<int>(SegmentCount(chunk, k) * plan_.elem);
  for (int i = 0; i < size_ - 1; ++i) {
    MPI_Request* request = &slots_[i * options_.depth + k % options_.depth];
    BRAID_CHECK_MPI(
        MPI_Irecv(PeerSlot(i, k), bytes, MPI_BYTE, PeerRank(i), kReduceScatterTag, comm_, request));
  }
  return Status::OK();
}

// Allgather step 0 lands in this rank's own chunk, whose segment k left in the
// first reduce-scatter send (sends_[k]); that send completes before the receive is
// posted. Posting while the reduce-scatter is still running lets the transfer
// overlap it.
Status MpiRing::PostFirstGather(int64_t k) {
  if (k >= static_cast<int64_t>(gathers_[0].size())) return Status::OK();
  BRAID_CHECK_MPI(MPI_Wait(&sends_[k], MPI_STATUS_IGNORE));
  const Chunk chunk = ChunkAt(rank_);
  const int bytes = static_cast<int>(SegmentCount(chunk, k) * plan_.elem);
  BRAID_CHECK_MPI(MPI_Irecv(SegmentData(chunk, k), bytes, MPI_BYTE, left_, kAllgatherTag, comm_,
                            &gathers_[0][k]));
  return Status::OK();
}

// Receives of allgather step `step` (>= 1), straight into chunk rank-step.
Status MpiRing::PostGathers(int step) {
  const Chunk chunk = ChunkAt(rank_ - step);
  std::vector<MPI_Request>& requests = gathers_[step % 2];
  requests.assign(static_cast<size_t>(Segments(chunk)), MPI_REQUEST_NULL);
  for (int64_t k = 0; k < Segments(chunk); ++k) {
    const int bytes = static_cast<int>(SegmentCount(chunk, k) * plan_.elem);
    BRAID_CHECK_MPI(MPI_Irecv(SegmentData(chunk, k), bytes, MPI_BYTE, left_, kAllgatherTag, comm_,
                              &requests[k]));
  }
  return Status::OK();
}

// Allgather step s: segment k of chunk rank-s arrives in place and is forwarded
// unless this is the last step. The next step's receives are posted first; their
// chunk was last read by reduce-scatter sends, all completed before.
Status MpiRing::GatherStep(int s) {
  const bool last = s == size_ - 2;
  if (s == 0) {
    BRAID_CHECK_MPI(
        MPI_Waitall(static_cast<int>(reduce_sends_), sends_.data(), MPI_STATUSES_IGNORE));
  }
  if (!last) BRAID_RETURN_IF_ERROR(PostGathers(s + 1));
  const Chunk chunk = ChunkAt(rank_ - s);
  std::vector<MPI_Request>& requests = gathers_[s % 2];
  for (int64_t k = 0; k < static_cast<int64_t>(requests.size()); ++k) {
    BRAID_CHECK_MPI(MPI_Wait(&requests[k], MPI_STATUS_IGNORE));
    if (!last) BRAID_RETURN_IF_ERROR(SendSegment(chunk, k, kAllgatherTag, right_));
  }
  return Status::OK();
}

}  // namespace mpi
}  // namespace braid
