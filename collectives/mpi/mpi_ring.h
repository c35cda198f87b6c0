// braid's own ring allreduce over MPI point-to-point, for large host buffers.
//
// The buffer is cut into `size` chunks and every chunk into segments. Reduce-
// scatter: in size-1 steps each rank receives a chunk from its left neighbour,
// reduces it into place and passes it on to the right, after which rank r owns
// the fully reduced chunk r+1. Allgather: size-1 more steps pass the reduced chunks
// around the ring, received in place.
//
// The ring is pipelined per segment rather than per step: a segment moves on as
// soon as it has been reduced (or, in the allgather, received), so the steps
// overlap and a neighbour copies a reduced segment while it is still in the
// shared cache. Incoming reduce-scatter segments land in a few persistent scratch
// slots, small enough that they are still in cache when reduced. The scratch is
// allocated and pre-faulted once: first-touch page faults on these machines cost
// more than the transfer itself (the cliff MPI_Allreduce falls off when it
// allocates its temporaries per call). Every rank computes the same chunk and
// segment boundaries, so empty chunks (count < size) need no messages.
//
// float16 / bfloat16 sums and products at three ranks or more, and their averages
// at any count, are rounded once (docs/engine.md, "16-bit floats"): a ring would
// round the partial sum at every hop, losing its low bits, and overflow on partial
// sums beyond the format's range even when the result (an average) is within it.
// Their reduce-scatter is direct instead: every rank sends each chunk straight to
// its owner, which adds the n contributions of each segment in float32 (an
// average: times float32(1/n)) and rounds once into place. Each rank sends and
// receives (n - 1)/n of the buffer, as in the ring's reduce-scatter, all of it in
// the 16-bit format; the allgather is the ring's. (Carrying float32 partials
// around the ring instead would move twice the bytes on every hop but the first.)
//
// MPI's rule that a buffer under a pending send is not written is kept: a
// region is received into only after the sends that read it have completed.
//
// Threading: one thread at a time.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "common/status.h"
#include "common/types.h"

namespace braid {
namespace mpi {

struct RingOptions {
  // Cap on the pre-faulted scratch; the ring allocates max(1, size - 1) * depth *
  // segment_bytes of it (the direct reduce-scatter has `depth` slots per peer).
  int64_t scratch_bytes = 64 << 20;
  // Largest message (one segment).
  int64_t segment_bytes = 512 << 10;
  // Reduce-scatter segments in flight (scratch slots).
  int depth = 2;
  // Caps every message's element count (tests force tiny values).
  int64_t max_piece_elements = INT32_MAX;
};

class MpiRing {
 public:
  // `comm` is borrowed and must outlive the ring.
  MpiRing(MPI_Comm comm, const RingOptions& options);

  // One contiguous part of the buffer the ring reduces.
  struct Piece {
    char* data;
    int64_t count;  // elements
  };

  // In-place allreduce of `count` elements. `op` is sum, min, max or product, or
  // average for float16 / bfloat16.
  Status Allreduce(void* data, int64_t count, DataType dtype, ReduceOp op);
  // In-place allreduce of the concatenation of `pieces` (a fused group) without
  // packing it: segments never straddle two pieces, so every message goes straight
  // from and to the tensors themselves.
  Status Allreduce(const std::vector<Piece>& pieces, DataType dtype, ReduceOp op);

  int64_t scratch_bytes() const { return scratch_size_; }
  char* scratch() const { return scratch_.get(); }

 private:
  // Chunk `index` of the ring, cut into the segments that travel as messages.
  struct Chunk {
    const std::vector<Piece>* segments;
  };
  // What one Allreduce call works on.
  struct Plan {
    int64_t count = 0;
    int64_t elem = 0;
    int64_t seg = 0;  // elements per segment
    DataType dtype = DataType::kFloat32;
    ReduceOp op = ReduceOp::kSum;  // how contributions combine (an average: kSum)
    bool direct = false;           // 16-bit floats rounded once at the owner
    float scale = 1.0f;            // the owner's factor before rounding (average: 1/n)
  };

  void CutSegments(const std::vector<Piece>& pieces);
  Chunk ChunkAt(int index) const;
  int64_t Segments(const Chunk& chunk) const {
    return static_cast<int64_t>(chunk.segments->size());
  }
  int64_t SegmentCount(const Chunk& chunk, int64_t k) const { return (*chunk.segments)[k].count; }
  char* SegmentData(const Chunk& chunk, int64_t k) const { return (*chunk.segments)[k].data; }
  char* Slot(int64_t k) const { return scratch_.get() + (k % options_.depth) * slot_bytes_; }
  // The direct reduce-scatter's peers: index i is rank rank_ + 1 + i (mod size).
  int PeerRank(int i) const { return (rank_ + 1 + i) % size_; }
  char* PeerSlot(int i, int64_t k) const { return Slot(k) + i * options_.depth * slot_bytes_; }

  Status SendSegment(const Chunk& chunk, int64_t k, int tag, int to);
  Status PostSlot(const Chunk& chunk, int64_t k);
  Status PostPeerSlots(const Chunk& chunk, int64_t k);
  Status DirectReduceScatter();
  Status EndReduceScatter(const Chunk& owned, int64_t k);
  Status PostFirstGather(int64_t k);
  Status PostGathers(int step);
  Status ReduceStep(int step);
  Status GatherStep(int step);

  MPI_Comm comm_;
  int rank_ = 0;
  int size_ = 1;
  int left_ = 0;
  int right_ = 0;
  RingOptions options_;
  int64_t slot_bytes_ = 0;
  int64_t scratch_size_ = 0;
  std::unique_ptr<char, void (*)(void*)> scratch_;
  Plan plan_;
  std::vector<std::vector<Piece>> chunk_segments_;  // per chunk; reused across calls
  std::vector<Piece> single_;
  // Requests, reused across calls (the hot path stops allocating once they have
  // grown): every send of a call, the scratch slots' receives, and the allgather
  // receives of the current and the next step.
  std::vector<MPI_Request> sends_;
  size_t reduce_sends_ = 0;         // sends_[0, reduce_sends_) are reduce-scatter sends
  std::vector<MPI_Request> slots_;  // [peer * depth + k % depth] in the direct reduce-scatter
  std::vector<MPI_Request> gathers_[2];
  std::vector<const void*> arrived_;  // the direct reduce-scatter's contributions
};

}  // namespace mpi
}  // namespace braid
