#include "collectives/mpi/mpi_neighbor.h"

#include <algorithm>
#include <string>

#include "collectives/mpi/mpi_check.h"

namespace braid {
namespace mpi {
namespace {

// Apart from the ring's tags (mpi_ring.cc), although no two collectives are ever
// in flight together on the data communicator.
constexpr int kNeighborTag = 3;

std::string Describe(const PeerBuffer& m, bool send) {
  return std::string(send ? "the message to rank " : "the message from rank ") +
         std::to_string(m.peer);
}

// A message's bytes in memory, for the overlap check.
struct Extent {
  uintptr_t begin;
  uintptr_t end;
  bool recv;
  const PeerBuffer* message;
};

// A receive buffer must not overlap any other message's buffer (MPI's rule: no
// buffer is written while another operation reads or writes it); sends may share.
// Sorted by start, a range overlaps an earlier one exactly when it starts before
// that one's end.
Status CheckOverlaps(std::vector<Extent>* extents) {
  std::sort(extents->begin(), extents->end(),
            [](const Extent& a, const Extent& b) { return a.begin < b.begin; });
  uintptr_t end = 0, recv_end = 0;
  for (const Extent& e : *extents) {
    if (e.begin < recv_end || (e.recv && e.begin < end)) {
      return InvalidArgument("neighbour exchange: " + Describe(*e.message, !e.recv) +
                             " overlaps another message's buffer, and a receive buffer must not");
    }
    end = std::max(end, e.end);
    if (e.recv) recv_end = std::max(recv_end, e.end);
  }
  return Status::OK();
}

}  // namespace

MpiNeighborExchange::MpiNeighborExchange(MPI_Comm comm, const NeighborOptions& options)
    : comm_(comm), options_(options) {
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
  options_.max_piece_bytes = std::clamp<int64_t>(options_.max_piece_bytes, 1, INT_MAX);
}

Status MpiNeighborExchange::Check(const std::vector<PeerBuffer>& sends,
                                  const std::vector<PeerBuffer>& recvs) const {
  std::vector<Extent> extents;
  for (bool send : {true, false}) {
    std::vector<char> seen(static_cast<size_t>(size_), 0);
    for (const PeerBuffer& m : send ? sends : recvs) {
      const std::string what = "neighbour exchange: " + Describe(m, send);
      if (m.peer < 0 || m.peer >= size_) {
        return InvalidArgument(what + ": no such rank (" + std::to_string(size_) + " ranks)");
      }
      if (seen[m.peer]++) return InvalidArgument(what + " appears twice");
      if (m.buf.device != kCpuDevice) {
        return InvalidArgument(what + ": the MPI backend handles host memory, not " +
                               DeviceName(m.buf.device));
      }
      if (!IsValidDataType(static_cast<int32_t>(m.buf.dtype))) {
        return InvalidArgument(what + ": invalid data type");
      }
      if (m.buf.count < 0) return InvalidArgument(what + ": negative element count");
      if (m.buf.count == 0) continue;
      if (m.buf.data == nullptr) return InvalidArgument(what + ": null data pointer");
      const uintptr_t begin = reinterpret_cast<uintptr_t>(m.buf.data);
      extents.push_back(Extent{begin, begin + static_cast<uintptr_t>(m.buf.bytes()), !send, &m});
    }
  }
  return CheckOverlaps(&extents);
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
