// braid's own ring allreduce over MPI point-to-point, for large host buffers.
//
// The buffer is cut into `size` chunks. Reduce-scatter: in size-1 steps every rank
// sends one chunk to its right neighbour and reduces the chunk arriving from its
// left one into place, after which rank r owns the fully reduced chunk r+1.
// Allgather: size-1 more steps pass the reduced chunks around the ring.
//
// Within a reduce-scatter step a chunk travels in segments: segment k arrives in
// one slot of a small ring of persistent scratch slots while earlier ones are
// reduced, so the received bytes are still in cache when they are reduced. The
// scratch is allocated and pre-faulted once: first-touch page faults on these
// machines cost more than the transfer itself (the cliff MPI_Allreduce falls off
// when it allocates its temporaries per call). Every rank computes the same
// chunk and segment boundaries, so empty chunks (count < size) need no messages.
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
  // Total bytes of pre-faulted scratch; split into `depth` slots.
  int64_t scratch_bytes = 64 << 20;
  // Largest message of a reduce-scatter step.
  int64_t segment_bytes = 256 << 10;
  // Reduce-scatter segments in flight (scratch slots).
  int depth = 2;
  // Largest message of an allgather step: they land in place, so bigger is cheaper.
  int64_t gather_segment_bytes = 1 << 30;
  // Caps every message's element count (tests force tiny values).
  int64_t max_piece_elements = INT32_MAX;
};

class MpiRing {
 public:
  // `comm` is borrowed and must outlive the ring.
  MpiRing(MPI_Comm comm, const RingOptions& options);

  // In-place allreduce of `count` elements. `op` is sum, min, max or product.
  Status Allreduce(void* data, int64_t count, DataType dtype, ReduceOp op);

  int64_t scratch_bytes() const { return scratch_size_; }

 private:
  struct Chunk {
    char* data;
    int64_t count;
  };
  Chunk ChunkAt(char* base, int64_t count, size_t elem, int index) const;
  int64_t SegmentElems(size_t elem, int64_t segment_bytes) const;
  Status ReduceStep(const Chunk& send, const Chunk& recv, size_t elem, DataType dtype, ReduceOp op);
  Status CopyStep(const Chunk& send, const Chunk& recv, size_t elem);
  Status PostSends(const Chunk& send, int64_t seg_elems, size_t elem, int tag);
  char* Slot(int64_t k) const { return scratch_.get() + (k % options_.depth) * slot_bytes_; }

  MPI_Comm comm_;
  int rank_ = 0;
  int size_ = 1;
  int left_ = 0;
  int right_ = 0;
  RingOptions options_;
  int64_t slot_bytes_ = 0;
  int64_t scratch_size_ = 0;
  std::unique_ptr<char, void (*)(void*)> scratch_;
  // Reused request arrays (the hot path does not allocate once they have grown).
  std::vector<MPI_Request> sends_;
  std::vector<MPI_Request> recvs_;
  std::vector<MPI_Request> slots_;
};

}  // namespace mpi
}  // namespace braid
