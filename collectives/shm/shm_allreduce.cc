// ShmBackend's allreduces: reduce-scatter and allgather through the segment, a
// chunk (one slot) at a time (shm_backend.h).
#include <algorithm>
#include <cstring>

#include "collectives/cpu/reduce.h"
#include "collectives/shm/shm_backend.h"

namespace braid {
namespace shm {
namespace {

// Bytes of this rank's slice combined before they are copied to its slot.
constexpr int64_t kCombineBlockBytes = 16 << 10;

}  // namespace

// 16-bit sums and products at three ranks or more (at two, one combination is one
// rounding already), and 16-bit averages, which are scaled before they are
// rounded: the MPI backend's rule.
bool ShmBackend::RoundsOnce(DataType dtype, ReduceOp op) const {
  if (!IsSixteenBitFloat(dtype)) return false;
  return op == ReduceOp::kAverage ||
         (size_ > 2 && (op == ReduceOp::kSum || op == ReduceOp::kProduct));
}

Status ShmBackend::Allreduce(const BufferView& buf, ReduceOp op) {
  BRAID_RETURN_IF_ERROR(CheckBuffer(buf, "allreduce"));
  BRAID_RETURN_IF_ERROR(CheckOp(buf.dtype, op));
  if (size_ == 1 || buf.count == 0) return Status::OK();
  spans_.Clear();
  spans_.Add(static_cast<char*>(buf.data), buf.bytes());
  return AllreduceSpans(buf.dtype, op);
}

// The group is reduced as its concatenation, in place: the chunks gather from
// and scatter to the tensors directly, so `staging` is not needed.
Status ShmBackend::AllreduceMany(const std::vector<BufferView>& buffers, ReduceOp op,
                                 const BufferView& staging) {
  (void)staging;
  spans_.Clear();
  for (const BufferView& b : buffers) {
    BRAID_RETURN_IF_ERROR(CheckBuffer(b, "allreduce"));
    if (b.dtype != buffers[0].dtype) return InvalidArgument("allreduce: a group mixes dtypes");
    spans_.Add(static_cast<char*>(b.data), b.bytes());
  }
  if (buffers.empty()) return Status::OK();
  BRAID_RETURN_IF_ERROR(CheckOp(buffers[0].dtype, op));
  if (size_ == 1 || spans_.total_bytes() == 0) return Status::OK();
  return AllreduceSpans(buffers[0].dtype, op);
}

Status ShmBackend::AllreduceSpans(DataType dtype, ReduceOp op) {
  const int64_t elem = static_cast<int64_t>(DataTypeSize(dtype));
  const int64_t total = spans_.total_bytes() / elem;
  const int64_t chunk = slot_bytes() / elem;
  for (int64_t first = 0; first < total; first += chunk) {
    BRAID_RETURN_IF_ERROR(AllreduceChunk(first, std::min(chunk, total - first), dtype, op));
  }
  return Status::OK();
}

// Elements [first, first + count) of the concatenation. Each rank copies in only
// the slices the others reduce; it reduces its own slice in its own buffer,
// reading the others' slots, and copies the result to its slot; then it copies
// the others' results out. (At two ranks that is half the copying of a chunk
// that goes whole into the slot and whole out again.)
Status ShmBackend::AllreduceChunk(int64_t first, int64_t count, DataType dtype, ReduceOp op) {
  const int64_t elem = static_cast<int64_t>(DataTypeSize(dtype));
  const int half = NextHalf();
  char* slot = segment_->Slot(half, rank_);
  int64_t begin = 0, end = 0;
  SliceOf(rank_, count, dtype, &begin, &end);
  spans_.Gather(first * elem, begin * elem, slot);
  spans_.Gather((first + end) * elem, (count - end) * elem, slot + end * elem);
  BRAID_RETURN_IF_ERROR(Step());
  ReduceOwnSlice(half, first, begin, end, dtype, op);
  BRAID_RETURN_IF_ERROR(Step());
  for (int j = 0; j < size_; ++j) {
    if (j == rank_) continue;
    SliceOf(j, count, dtype, &begin, &end);
    spans_.Scatter((first + begin) * elem, (end - begin) * elem,
                   segment_->Slot(half, j) + begin * elem);
  }
  return Status::OK();
}

// Slices are whole cache lines (but the last), so that no two ranks write one line.
void ShmBackend::SliceOf(int j, int64_t count, DataType dtype, int64_t* begin, int64_t* end) const {
  const int64_t line = std::max<int64_t>(1, 64 / static_cast<int64_t>(DataTypeSize(dtype)));
  const int64_t per_rank = (count + size_ - 1) / size_;
  const int64_t slice = (per_rank + line - 1) / line * line;
  *begin = std::min(count, slice * j);
  *end = std::min(count, *begin + slice);
}

// Elements [begin, end) of the chunk at `first`, this rank's slice, combined in
// this rank's own buffer (the tensors the slice spans), then copied to this
// rank's slot for the others.
void ShmBackend::ReduceOwnSlice(int half, int64_t first, int64_t begin, int64_t end, DataType dtype,
                                ReduceOp op) {
  if (end <= begin) return;
  const int64_t elem = static_cast<int64_t>(DataTypeSize(dtype));
  char* slot = segment_->Slot(half, rank_);
  // A block at a time, so that the copy reads what the combination just wrote
  // from the first-level cache.
  const int64_t block = std::max<int64_t>(elem, kCombineBlockBytes / elem * elem);
  spans_.ForEach((first + begin) * elem, (end - begin) * elem,
                 [&](char* mine, int64_t done, int64_t bytes) {
                   for (int64_t at = 0; at < bytes; at += block) {
                     const int64_t n = std::min(block, bytes - at);
                     const int64_t offset = begin * elem + done + at;
                     CombineWithOthers(half, offset, mine + at, n / elem, dtype, op);
                     std::memcpy(slot + offset, mine + at, static_cast<size_t>(n));
                   }
                 });
}

// mine[0, count) = mine op (the same elements at `offset` in every other rank's
// slot of `half`): this rank's contribution first, then the others' in rank order.
void ShmBackend::CombineWithOthers(int half, int64_t offset, char* mine, int64_t count,
                                   DataType dtype, ReduceOp op) {
  if (RoundsOnce(dtype, op)) {
    others_.clear();
    for (int j = 0; j < size_; ++j)
      if (j != rank_) others_.push_back(segment_->Slot(half, j) + offset);
    const bool average = op == ReduceOp::kAverage;
    const float scale = average ? static_cast<float>(1.0 / size_) : 1.0f;
    cpu::ReduceHalvesRounded(mine, others_.data(), size_ - 1, count, dtype,
                             average ? ReduceOp::kSum : op, scale);
    return;
  }
  for (int j = 0; j < size_; ++j) {
    if (j != rank_) cpu::ReduceInto(mine, segment_->Slot(half, j) + offset, count, dtype, op);
  }
}

}  // namespace shm
}  // namespace braid
