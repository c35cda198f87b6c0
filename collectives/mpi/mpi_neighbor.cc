#include "collectives/mpi/mpi_neighbor.h"

#include <algorithm>
#include <string>

#include "collectives/mpi/mpi_check.h"
#include "collectives/peer_messages.h"

namespace braid {
namespace mpi {
namespace {

// Apart from the ring's tags (mpi_ring.cc), although no two collectives are ever
// in flight together on the data communicator.
constexpr int kNeighborTag = 3;

}  // namespace

MpiNeighborExchange::MpiNeighborExchange(MPI_Comm comm, const NeighborOptions& options)
    : comm_(comm), options_(options) {
  MPI_Comm_size(comm_, &size_);
  options_.max_piece_bytes = std::clamp<int64_t>(options_.max_piece_bytes, 1, INT_MAX);
}

// The buffers (host memory), then the lists (collectives/peer_messages.h).
Status MpiNeighborExchange::Check(const std::vector<PeerBuffer>& sends,
                                  const std::vector<PeerBuffer>& recvs) const {
  for (bool send : {true, false}) {
    for (const PeerBuffer& m : send ? sends : recvs) {
      const std::string what = "mpi neighbour exchange: " + DescribePeerMessage(m, send);
      if (m.buf.device != kCpuDevice) {
        return InvalidArgument(what + ": the MPI backend handles host memory, not " +
                               DeviceName(m.buf.device));
      }
      if (!IsValidDataType(static_cast<int32_t>(m.buf.dtype))) {
        return InvalidArgument(what + ": invalid data type");
      }
      if (m.buf.count < 0) return InvalidArgument(what + ": negative element count");
      if (m.buf.count > 0 && m.buf.data == nullptr) {
        return InvalidArgument(what + ": null data pointer");
      }
    }
  }
  return CheckPeerMessages(sends, recvs, size_, "mpi");
}

Status MpiNeighborExchange::Exchange(const std::vector<PeerBuffer>& sends,
                                     const std::vector<PeerBuffer>& recvs) {
  if (sends.empty() && recvs.empty()) return Status::OK();
  BRAID_RETURN_IF_ERROR(Check(sends, recvs));
  requests_.clear();
  for (const PeerBuffer& m : recvs) BRAID_RETURN_IF_ERROR(Post(m, /*send=*/false));
  for (const PeerBuffer& m : sends) BRAID_RETURN_IF_ERROR(Post(m, /*send=*/true));
  if (requests_.empty()) return Status::OK();
  BRAID_CHECK_MPI(
      MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE));
  return Status::OK();
}

// One message's pieces with MPI_Irecv / MPI_Isend.
Status MpiNeighborExchange::Post(const PeerBuffer& m, bool send) {
  char* data = static_cast<char*>(m.buf.data);
  const int64_t bytes = m.buf.bytes();
  for (int64_t offset = 0; offset < bytes; offset += options_.max_piece_bytes) {
    const int n = static_cast<int>(std::min(options_.max_piece_bytes, bytes - offset));
    requests_.push_back(MPI_REQUEST_NULL);
    if (send) {
      BRAID_CHECK_MPI(
          MPI_Isend(data + offset, n, MPI_BYTE, m.peer, kNeighborTag, comm_, &requests_.back()));
    } else {
      BRAID_CHECK_MPI(
          MPI_Irecv(data + offset, n, MPI_BYTE, m.peer, kNeighborTag, comm_, &requests_.back()));
    }
  }
  return Status::OK();
}

}  // namespace mpi
}  // namespace braid
