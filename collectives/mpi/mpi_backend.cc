#include "collectives/mpi/mpi_backend.h"

#include <algorithm>
#include <cstring>

#include "collectives/cpu/reduce.h"
#include "collectives/host_checks.h"
#include "collectives/mpi/mpi_check.h"

namespace braid {
namespace mpi {
namespace {

RingOptions MakeRingOptions(const MpiBackendOptions& options) {
  RingOptions ring;
  ring.scratch_bytes = options.scratch_bytes;
  ring.segment_bytes = options.ring_segment_bytes;
  ring.depth = options.ring_depth;
  ring.max_piece_elements = options.max_piece_elements;
  return ring;
}

NeighborOptions MakeNeighborOptions(const MpiBackendOptions& options) {
  NeighborOptions neighbor;
  // Bytes are the elements of a neighbour exchange's MPI calls.
  neighbor.max_piece_bytes = options.max_piece_elements;
  return neighbor;
}

}  // namespace

Status MpiBackend::Create(MPI_Comm comm, const MpiBackendOptions& options,
                          std::unique_ptr<MpiBackend>* out) {
  std::unique_ptr<MpiBackend> backend(new MpiBackend(comm, options));
  // Failing here, at init, beats one rank failing mid-collective while the others wait.
  if (backend->size_ > 1 && backend->ring_.scratch_bytes() == 0) {
    return BackendError("could not allocate the ring allreduce's scratch memory");
  }
  BRAID_RETURN_IF_ERROR(MpiTypeTable::Create(&backend->types_));
  *out = std::move(backend);
  return Status::OK();
}

MpiBackend::MpiBackend(MPI_Comm comm, const MpiBackendOptions& options)
    : comm_(comm),
      options_(options),
      ring_(comm, MakeRingOptions(options)),
      neighbors_(comm, MakeNeighborOptions(options)) {
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
  options_.max_piece_elements =
      std::min<int64_t>(std::max<int64_t>(options_.max_piece_elements, 1), INT_MAX);
}

Status MpiBackend::CheckBuffer(const BufferView& buf, const char* what) const {
  return CheckHostBuffer(buf, what, "the MPI backend");
}

// The MPI operator for `op` on `dtype`. A float16 / bfloat16 average has none: it
// is a float32 sum (MPI_SUM) scaled by 1/n before its one rounding.
Status MpiBackend::CheckOp(DataType dtype, ReduceOp op, MPI_Op* mpi_op) const {
  if (op == ReduceOp::kAverage && IsSixteenBitFloat(dtype)) {
    *mpi_op = MPI_SUM;
    return Status::OK();
  }
  return types_->Op(dtype, op, mpi_op);
}

// Whether a reduction is rounded once (collectives/mpi/mpi_ring.h): 16-bit sums
// and products at three ranks or more (at two, one reduction is one rounding
// already), and 16-bit averages, which are scaled before they are rounded.
bool MpiBackend::RoundsOnce(DataType dtype, ReduceOp op) const {
  if (!IsSixteenBitFloat(dtype)) return false;
  return op == ReduceOp::kAverage ||
         (size_ > 2 && (op == ReduceOp::kSum || op == ReduceOp::kProduct));
}

int64_t MpiBackend::RingThreshold(DataType dtype, ReduceOp op) const {
  if (!RoundsOnce(dtype, op)) return options_.ring_threshold_bytes;
  return std::min(options_.ring_threshold_bytes, options_.round_once_ring_threshold_bytes);
}

Status MpiBackend::Allreduce(const BufferView& buf, ReduceOp op) {
  BRAID_RETURN_IF_ERROR(CheckBuffer(buf, "allreduce"));
  MPI_Op mpi_op;
  BRAID_RETURN_IF_ERROR(CheckOp(buf.dtype, op, &mpi_op));
  if (size_ == 1 || buf.count == 0) return Status::OK();
  if (buf.bytes() >= RingThreshold(buf.dtype, op)) {
    return ring_.Allreduce(buf.data, buf.count, buf.dtype, op);
  }
  if (RoundsOnce(buf.dtype, op)) return AllreduceWidened(buf, op);
  return AllreduceWithMpi(buf, mpi_op);
}

// MPI's algorithms apply the user op once per hop, rounding each partial sum to
// 16 bits; in float32 the sum is rounded once, as on the ring. Only for messages
// of a few KiB, where the doubled bytes cost less than the ring's latency.
Status MpiBackend::AllreduceWidened(const BufferView& buf, ReduceOp op) {
  if (static_cast<int64_t>(wide_.size()) < buf.count) wide_.resize(static_cast<size_t>(buf.count));
  cpu::WidenHalf(wide_.data(), buf.data, buf.count, buf.dtype);
  const MPI_Op mpi_op = op == ReduceOp::kProduct ? MPI_PROD : MPI_SUM;
  const int64_t piece = options_.max_piece_elements;
  for (int64_t offset = 0; offset < buf.count; offset += piece) {
    const int n = static_cast<int>(std::min(piece, buf.count - offset));
    BRAID_CHECK_MPI(
        MPI_Allreduce(MPI_IN_PLACE, wide_.data() + offset, n, MPI_FLOAT, mpi_op, comm_));
  }
  const float scale = op == ReduceOp::kAverage ? static_cast<float>(1.0 / size_) : 1.0f;
  cpu::NarrowHalf(buf.data, wide_.data(), buf.count, buf.dtype, scale);
  return Status::OK();
}

Status MpiBackend::AllreduceMany(const std::vector<BufferView>& buffers, ReduceOp op,
                                 const BufferView& staging) {
  int64_t total = 0;
  for (const BufferView& b : buffers) {
    BRAID_RETURN_IF_ERROR(CheckBuffer(b, "allreduce"));
    if (b.dtype != buffers[0].dtype) return InvalidArgument("allreduce: a group mixes dtypes");
    total += b.bytes();
  }
  MPI_Op mpi_op;  // validates `op` before the ring, which has no MPI op to reject it
  if (!buffers.empty()) BRAID_RETURN_IF_ERROR(CheckOp(buffers[0].dtype, op, &mpi_op));
  if (size_ == 1) return Status::OK();  // every op of one contribution is that contribution
  if (buffers.empty() || total < RingThreshold(buffers[0].dtype, op)) {
    return Backend::AllreduceMany(buffers, op, staging);
  }
  pieces_.clear();
  for (const BufferView& b : buffers) pieces_.push_back({static_cast<char*>(b.data), b.count});
  return ring_.Allreduce(pieces_, buffers[0].dtype, op);
}

Status MpiBackend::AllreduceWithMpi(const BufferView& buf, MPI_Op mpi_op) {
  const MPI_Datatype type = types_->Type(buf.dtype);
  const int64_t piece = options_.max_piece_elements;
  for (int64_t offset = 0; offset < buf.count; offset += piece) {
    const BufferView part = buf.Slice(offset, std::min(piece, buf.count - offset));
    BRAID_CHECK_MPI(
        MPI_Allreduce(MPI_IN_PLACE, part.data, static_cast<int>(part.count), type, mpi_op, comm_));
  }
  return Status::OK();
}

Status MpiBackend::BroadcastPieces(char* data, int64_t count, DataType dtype, int root) {
  const MPI_Datatype type = types_->Type(dtype);
  const int64_t piece = options_.max_piece_elements;
  const int64_t elem = static_cast<int64_t>(DataTypeSize(dtype));
  for (int64_t offset = 0; offset < count; offset += piece) {
    const int n = static_cast<int>(std::min(piece, count - offset));
    BRAID_CHECK_MPI(MPI_Bcast(data + offset * elem, n, type, root, comm_));
  }
  return Status::OK();
}

Status MpiBackend::Broadcast(const BufferView& buf, int root) {
  BRAID_RETURN_IF_ERROR(CheckBuffer(buf, "broadcast"));
  BRAID_RETURN_IF_ERROR(CheckBroadcastRoot(root, size_));
  return BroadcastPieces(static_cast<char*>(buf.data), buf.count, buf.dtype, root);
}

Status MpiBackend::Allgatherv(const BufferView& send, const BufferView& recv,
                              const std::vector<int64_t>& counts) {
  BRAID_RETURN_IF_ERROR(CheckHostAllgatherv(send, recv, counts, rank_, size_, "the MPI backend"));
  // MPI takes int counts and displacements; every rank sees the same counts, so
  // every rank makes the same choice of path.
  const int64_t limit = options_.max_piece_elements;
  bool fits = true;
  int64_t offset = 0;
  int64_t my_offset = 0;
  counts_.resize(size_);
  displacements_.resize(size_);
  for (int r = 0; r < size_; ++r) {
    if (r == rank_) my_offset = offset;
    fits = fits && counts[r] <= limit && offset <= limit;
    counts_[r] = static_cast<int>(std::min<int64_t>(counts[r], INT_MAX));
    displacements_[r] = static_cast<int>(std::min<int64_t>(offset, INT_MAX));
    offset += counts[r];
  }
  const int64_t elem = static_cast<int64_t>(DataTypeSize(recv.dtype));
  char* mine = static_cast<char*>(recv.data) + my_offset * elem;
  const bool in_place = send.data == mine;
  if (!fits) {
    if (!in_place && send.count > 0) std::memcpy(mine, send.data, send.count * elem);
    return AllgathervWithBcast(recv, counts);
  }
  const MPI_Datatype type = types_->Type(recv.dtype);
  BRAID_CHECK_MPI(MPI_Allgatherv(in_place ? MPI_IN_PLACE : send.data, counts_[rank_], type,
                                 recv.data, counts_.data(), displacements_.data(), type, comm_));
  return Status::OK();
}

// Counts or displacements beyond MPI's int: every rank broadcasts its own block
// (already in place in `recv`) in pieces. Slower than MPI_Allgatherv (size
// sequential broadcasts), but only reached by blocks of billions of elements,
// where bandwidth rather than latency dominates anyway.
Status MpiBackend::AllgathervWithBcast(const BufferView& recv, const std::vector<int64_t>& counts) {
  const int64_t elem = static_cast<int64_t>(DataTypeSize(recv.dtype));
  int64_t offset = 0;
  for (int r = 0; r < size_; ++r) {
    char* block = static_cast<char*>(recv.data) + offset * elem;
    BRAID_RETURN_IF_ERROR(BroadcastPieces(block, counts[r], recv.dtype, r));
    offset += counts[r];
  }
  return Status::OK();
}

Status MpiBackend::Barrier() {
  BRAID_CHECK_MPI(MPI_Barrier(comm_));
  return Status::OK();
}

Status MpiBackend::NeighborExchange(const std::vector<PeerBuffer>& sends,
                                    const std::vector<PeerBuffer>& recvs) {
  return neighbors_.Exchange(sends, recvs);
}

}  // namespace mpi
}  // namespace braid
