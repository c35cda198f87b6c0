// The host backend's neighbour exchange (Backend::NeighborExchange): every
// receive is posted, then every send, on the data communicator with a tag of its
// own, and the call returns when all of them have completed (MPI_Waitall, as the
// ring waits: the data plane runs only once every rank has agreed to, so the wait
// is short, and Open MPI moves large messages only from inside its calls, which
// a sleeping wait would leave idle). A stalled exchange is ended as any stalled
// collective is, by the engine's watchdog (MPI_Abort from another thread).
//
// Messages travel as bytes, cut into pieces of at most `max_piece_bytes` (MPI's
// counts are ints); both sides cut the same number of bytes the same way, and MPI
// keeps the pieces of one (sender, tag) in order.
//
// No persistent requests (MPI_Send_init / MPI_Recv_init, restarted with
// MPI_Startall): on Open MPI 4.1 (shared memory, two ranks) starting them took
// 0.9 us per exchange of 8 bytes against 0.4 us for MPI_Irecv + MPI_Isend, whose
// small sends take a fast path the persistent ones lack, and larger messages
// (1 KiB to 16 MiB) showed no gain beyond the noise.
//
// Threading: one thread at a time (Backend's contract).
#pragma once

#include <mpi.h>

#include <climits>
#include <cstdint>
#include <vector>

#include "collectives/backend.h"
#include "common/status.h"

namespace braid {
namespace mpi {

struct NeighborOptions {
  int64_t max_piece_bytes = INT_MAX;
};

class MpiNeighborExchange {
 public:
  // `comm` is borrowed and must outlive this object.
  MpiNeighborExchange(MPI_Comm comm, const NeighborOptions& options);

  Status Exchange(const std::vector<PeerBuffer>& sends, const std::vector<PeerBuffer>& recvs);

 private:
  Status Check(const std::vector<PeerBuffer>& sends, const std::vector<PeerBuffer>& recvs) const;
  Status Post(const PeerBuffer& message, bool send);

  MPI_Comm comm_;
  int size_ = 1;
  NeighborOptions options_;
  std::vector<MPI_Request> requests_;  // of the exchange in progress; reused
};

}  // namespace mpi
}  // namespace braid
