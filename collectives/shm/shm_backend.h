// The shared-memory host data plane: collectives on CPU buffers among ranks that
// all run on one host, through one segment they all map (shm_segment.h), without
// MPI messages.
//
// Allreduce (reduce-scatter, then allgather, in the segment), chunk by chunk: a
// chunk is at most one slot of the buffer, cut into n slices (cache-line
// aligned), slice j reduced by rank j. Each rank copies the slices the others
// reduce into its slot; once every rank has (ShmSync::ArriveAndWait), rank j
// reduces slice j in its own buffer, reading slice j of every other rank's slot,
// and copies the result into its slot; once every rank has, each copies the
// other n - 1 reduced slices out into its buffer. Two steps per chunk.
// Consecutive chunks alternate between the segment's two halves, so a rank may
// copy its next chunk in while slower ranks still copy the previous result out.
// Each element is reduced by one rank only, so every rank gets the same bits.
//
// float16 / bfloat16 are reduced through float32 as in the MPI backend
// (collectives/mpi/mpi_backend.h): sums and products at three ranks or more, and
// averages (kAverage, the float32 sum times float32(1/n)), are rounded once
// (cpu::ReduceHalvesRounded); the other reductions round at each of the n - 1
// combinations, which for min and max (and two ranks) is exact or one rounding.
//
// AllreduceMany reduces the group as its concatenation (ByteSpans), chunk by
// chunk, without packing. Allgatherv moves every rank's block a slot at a time,
// one step per slot; Broadcast moves the root's buffer a half of the segment at a
// time. NeighborExchange is point to point, and is delegated to the MPI backend
// given at creation (shared memory would save little for a few large messages
// between pairs of ranks).
//
// A collective that fails in the middle (Abort, or a peer process that died)
// leaves the ranks out of step; every later call fails with the same error.
//
// Threading: driven by one thread at a time (Backend's contract); Abort() may be
// called from any thread.
#pragma once

#include <memory>
#include <vector>

#include "collectives/backend.h"
#include "collectives/shm/byte_spans.h"
#include "collectives/shm/shm_segment.h"
#include "collectives/shm/shm_sync.h"

namespace braid {
namespace shm {

// Upper bound of a rank's slot, i.e. of a chunk: 2 MiB chunks measured best at
// 2 ranks on a 2-core host with 2 MiB of L2 per core (docs/shm.md); smaller ones
// pay more steps per byte, larger ones fall out of L2 between the copy in and
// the copy out.
constexpr int64_t kMaxSlotBytes = 2 << 20;
constexpr int64_t kMinSlotBytes = 64 << 10;

// The slot size for `ranks` ranks and a fusion buffer of `fusion_bytes`: a
// fusion buffer is spread over the ranks' slots, within [kMinSlotBytes,
// kMaxSlotBytes], in whole pages; `forced_bytes` (tests, tuning) wins when set.
int64_t ChooseSlotBytes(int ranks, int64_t fusion_bytes, int64_t forced_bytes);

class ShmBackend : public Backend {
 public:
  // `segment` is mapped by every rank of the job (`size` of them, this one being
  // `rank`); `point_to_point` (borrowed, must outlive this backend) carries
  // NeighborExchange.
  ShmBackend(std::unique_ptr<ShmSegment> segment, int rank, int size, Backend* point_to_point);

  const char* name() const override { return "shm"; }
  bool CanHandle(int device) const override { return device == kCpuDevice; }
  Status Allreduce(const BufferView& buf, ReduceOp op) override;
  Status AllreduceMany(const std::vector<BufferView>& buffers, ReduceOp op,
                       const BufferView& staging) override;
  Status Allgatherv(const BufferView& send, const BufferView& recv,
                    const std::vector<int64_t>& counts) override;
  Status Broadcast(const BufferView& buf, int root) override;
  Status Barrier() override;
  Status NeighborExchange(const std::vector<PeerBuffer>& sends,
                          const std::vector<PeerBuffer>& recvs) override;
  void Abort() override { sync_.Abort(); }

  int64_t slot_bytes() const { return segment_->layout().slot_bytes; }

 private:
  Status CheckBuffer(const BufferView& buf, const char* what) const;
  Status CheckOp(DataType dtype, ReduceOp op) const;
  bool RoundsOnce(DataType dtype, ReduceOp op) const;
  // The half of the segment the next step writes: steps alternate, across
  // collectives too, so that a step never overwrites what the previous one's
  // readers may still be reading.
  int NextHalf() { return static_cast<int>(steps_++ & 1); }
  // ArriveAndWait that remembers a failure: the ranks are out of step after it.
  Status Step();

  Status AllreduceSpans(DataType dtype, ReduceOp op);
  Status AllreduceChunk(int64_t first, int64_t count, DataType dtype, ReduceOp op);
  void ReduceOwnSlice(int half, int64_t first, int64_t begin, int64_t end, DataType dtype,
                      ReduceOp op);
  void CombineWithOthers(int half, int64_t offset, char* mine, int64_t count, DataType dtype,
                         ReduceOp op);
  // Rank j's slice [*begin, *end) of a chunk of `count` elements of `dtype`.
  void SliceOf(int j, int64_t count, DataType dtype, int64_t* begin, int64_t* end) const;
  Status GatherRound(const std::vector<int64_t>& starts, const std::vector<int64_t>& sizes,
                     char* recv, int64_t offset);

  std::unique_ptr<ShmSegment> segment_;
  int rank_;
  int size_;
  Backend* point_to_point_;
  ShmSync sync_;
  uint64_t steps_ = 0;
  Status broken_;
  ByteSpans spans_;                  // reused by the allreduces
  std::vector<const void*> others_;  // reused by ReduceOwnSlice
};

}  // namespace shm
}  // namespace braid
