// The host data plane: collectives on CPU buffers over an MPI communicator
// reserved for data.
//
// Allreduce takes one of two paths by message size: MPI_Allreduce below
// `ring_threshold_bytes` (latency-bound sizes, where MPI's algorithms win), braid's
// own ring (mpi_ring.h) from there on (bandwidth-bound sizes, where MPI's
// per-call temporaries cost page faults). Both reduce float16 / bfloat16 through
// float32 (mpi_datatypes.h). Their sums and products at three ranks or more, and
// their averages (Allreduce takes kAverage for them alone: the float32 sum times
// float32(1/n), core/reduce_plan.h), are rounded once, so that they neither lose
// bits nor overflow on the way: from `round_once_ring_threshold_bytes` (4 KiB) the
// ring adds every rank's contributions at their owner in float32 (mpi_ring.h);
// below it MPI_Allreduce runs on a float32 copy.
//
// Element counts beyond INT_MAX: every MPI call takes at most
// `max_piece_elements` elements (INT_MAX by default), so large buffers go in
// pieces. Allgatherv falls back to one MPI_Bcast per rank, in pieces, when a count
// or a displacement exceeds that bound.
//
// NeighborExchange is point to point (mpi_neighbor.h).
//
// Threading: driven by one thread at a time (Backend's contract).
#pragma once

#include <mpi.h>

#include <climits>
#include <memory>
#include <vector>

#include "collectives/backend.h"
#include "collectives/mpi/mpi_datatypes.h"
#include "collectives/mpi/mpi_neighbor.h"
#include "collectives/mpi/mpi_ring.h"

namespace braid {
namespace mpi {

// Crossover between MPI_Allreduce and the ring, measured with float32 sums at 2
// and 4 ranks on one host (Open MPI 4.1, vader/CMA): below 4 MiB MPI's
// latency-oriented algorithms win; from 4 MiB on the ring matches or beats them,
// and beyond ~16 MiB, where MPI's per-call temporaries start to fault pages in,
// it is 2-3x faster.
constexpr int64_t kDefaultRingThresholdBytes = 4 << 20;
// The same crossover for float16 / bfloat16 reductions that round once (sums and
// products at 3+ ranks, averages): MPI_Allreduce on their float32 copy against the
// ring's direct reduce-scatter, at 3 ranks (2 for averages) on the same host: 5-8
// us against 8-13 us up to 1 KiB, 44 us against 18 us at 8 KiB, 1.9 ms against
// 0.64 ms at 1 MiB (medians).
constexpr int64_t kDefaultRoundOnceRingThresholdBytes = 4 << 10;
// 512 KiB segments: a scratch slot plus the segment it is reduced into fit the
// 1 MiB L2, and fewer, larger messages cost less per byte than 64-256 KiB ones.
constexpr int64_t kDefaultRingSegmentBytes = 512 << 10;
constexpr int kDefaultRingDepth = 2;

struct MpiBackendOptions {
  int64_t ring_threshold_bytes = kDefaultRingThresholdBytes;
  int64_t round_once_ring_threshold_bytes = kDefaultRoundOnceRingThresholdBytes;
  // Cap on the ring's pre-faulted scratch (TransportOptions::host_scratch_bytes).
  // The ring takes ring_depth * ring_segment_bytes of it, shrinking the segments
  // when the cap is smaller.
  int64_t scratch_bytes = 64 << 20;
  int64_t ring_segment_bytes = kDefaultRingSegmentBytes;
  int ring_depth = kDefaultRingDepth;
  // Most elements handed to any single MPI call; tests set tiny values to
  // exercise the splitting on small buffers.
  int64_t max_piece_elements = INT_MAX;
};

class MpiBackend : public Backend {
 public:
  // `comm` is borrowed, must outlive the backend and should return errors
  // (MPI_ERRORS_RETURN) rather than abort. Collective over `comm`.
  static Status Create(MPI_Comm comm, const MpiBackendOptions& options,
                       std::unique_ptr<MpiBackend>* out);

  const char* name() const override { return "mpi"; }
  bool CanHandle(int device) const override { return device == kCpuDevice; }
  std::vector<HostRegion> OwnedHostMemory() const override {
    return {{ring_.scratch(), static_cast<size_t>(ring_.scratch_bytes())}};
  }
  Status Allreduce(const BufferView& buf, ReduceOp op) override;
  // Large groups go through the ring in place, without packing; small ones are
  // packed into `staging` for one MPI_Allreduce.
  Status AllreduceMany(const std::vector<BufferView>& buffers, ReduceOp op,
                       const BufferView& staging) override;
  Status Allgatherv(const BufferView& send, const BufferView& recv,
                    const std::vector<int64_t>& counts) override;
  Status Broadcast(const BufferView& buf, int root) override;
  Status Barrier() override;
  Status NeighborExchange(const std::vector<PeerBuffer>& sends,
                          const std::vector<PeerBuffer>& recvs) override;

 private:
  MpiBackend(MPI_Comm comm, const MpiBackendOptions& options);
  Status CheckBuffer(const BufferView& buf, const char* what) const;
  Status AllreduceWithMpi(const BufferView& buf, MPI_Op mpi_op);
  Status CheckOp(DataType dtype, ReduceOp op, MPI_Op* mpi_op) const;
  bool RoundsOnce(DataType dtype, ReduceOp op) const;
  int64_t RingThreshold(DataType dtype, ReduceOp op) const;
  Status AllreduceWidened(const BufferView& buf, ReduceOp op);
  Status BroadcastPieces(char* data, int64_t count, DataType dtype, int root);
  Status AllgathervWithBcast(const BufferView& recv, const std::vector<int64_t>& counts);

  MPI_Comm comm_;
  int rank_ = 0;
  int size_ = 1;
  MpiBackendOptions options_;
  std::unique_ptr<MpiTypeTable> types_;
  MpiRing ring_;
  MpiNeighborExchange neighbors_;
  std::vector<MpiRing::Piece> pieces_;  // reused by AllreduceMany
  std::vector<float> wide_;             // reused by AllreduceWidened
  // Reused by Allgatherv.
  std::vector<int> counts_;
  std::vector<int> displacements_;
};

}  // namespace mpi
}  // namespace braid
