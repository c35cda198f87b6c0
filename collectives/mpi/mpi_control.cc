#include "collectives/mpi/mpi_control.h"

#include <algorithm>
#include <climits>

#include "collectives/mpi/mpi_check.h"
#include "collectives/mpi/mpi_wait.h"

namespace braid {
namespace mpi {
namespace {

constexpr int kRoot = 0;
constexpr int kTagBits = 101;
constexpr int kTagBitsResult = 102;

}  // namespace

MpiControlChannel::MpiControlChannel(MPI_Comm comm) : comm_(comm) {
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
}

// Two steps: the sizes (MPI_Gather), then the bytes (MPI_Gatherv).
Status MpiControlChannel::GatherToRoot(const std::string& mine, std::vector<std::string>* all) {
  all->clear();
  if (mine.size() > static_cast<size_t>(INT_MAX)) {
    return InvalidArgument("control message of " + std::to_string(mine.size()) +
                           " bytes exceeds INT_MAX");
  }
  int my_size = static_cast<int>(mine.size());
  const bool root = rank_ == kRoot;
  sizes_.resize(root ? size_ : 0);
  BRAID_CHECK_MPI(MPI_Gather(&my_size, 1, MPI_INT, sizes_.data(), 1, MPI_INT, kRoot, comm_));
  int64_t total = 0;
  if (root) {
    displacements_.resize(size_);
    for (int r = 0; r < size_; ++r) {
      displacements_[r] = static_cast<int>(std::min<int64_t>(total, INT_MAX));
      total += sizes_[r];
    }
    gathered_.resize(static_cast<size_t>(std::max<int64_t>(total, 1)));
  }
  // The root checks after the collective so that no rank is left waiting in it.
  BRAID_CHECK_MPI(MPI_Gatherv(mine.data(), my_size, MPI_CHAR, gathered_.data(), sizes_.data(),
                              displacements_.data(), MPI_CHAR, kRoot, comm_));
  if (!root) return Status::OK();
  if (total > INT_MAX) return Internal("gathered control messages exceed INT_MAX bytes");
  all->reserve(size_);
  for (int r = 0; r < size_; ++r) {
    all->emplace_back(gathered_.data() + displacements_[r], static_cast<size_t>(sizes_[r]));
  }
  return Status::OK();
}

Status MpiControlChannel::BroadcastFromRoot(std::string* bytes) {
  int64_t length = static_cast<int64_t>(bytes->size());
  BRAID_CHECK_MPI(MPI_Bcast(&length, 1, MPI_INT64_T, kRoot, comm_));
  if (rank_ != kRoot) bytes->resize(static_cast<size_t>(length));
  for (int64_t offset = 0; offset < length; offset += INT_MAX) {
    const int piece = static_cast<int>(std::min<int64_t>(length - offset, INT_MAX));
    BRAID_CHECK_MPI(MPI_Bcast(&(*bytes)[offset], piece, MPI_CHAR, kRoot, comm_));
  }
  return Status::OK();
}

// A star through rank 0 over point-to-point messages rather than MPI_Allreduce:
// the waits are polite (see mpi_wait.h), so a rank that arrives early in a round
// sleeps instead of spinning until the last rank arrives.
Status MpiControlChannel::AllreduceBitAnd(std::vector<uint64_t>* words, int spin_us) {
  if (words->size() > static_cast<size_t>(INT_MAX)) {
    return InvalidArgument("bit vector of " + std::to_string(words->size()) +
                           " words exceeds INT_MAX");
  }
  const int n = static_cast<int>(words->size());
  if (size_ == 1) return Status::OK();
  if (rank_ != kRoot) {
    // MPI forbids receiving into a buffer that a pending send still reads.
    incoming_.resize(static_cast<size_t>(n));
    MPI_Request reqs[2];
    BRAID_CHECK_MPI(MPI_Isend(words->data(), n, MPI_UINT64_T, kRoot, kTagBits, comm_, &reqs[0]));
    BRAID_CHECK_MPI(
        MPI_Irecv(incoming_.data(), n, MPI_UINT64_T, kRoot, kTagBitsResult, comm_, &reqs[1]));
    BRAID_RETURN_IF_ERROR(WaitAllPolitely(2, reqs, spin_us));
    std::copy(incoming_.begin(), incoming_.end(), words->begin());
    return Status::OK();
  }
  incoming_.resize(static_cast<size_t>(n) * (size_ - 1));
  requests_.resize(size_ - 1);
  for (int r = 1; r < size_; ++r) {
    BRAID_CHECK_MPI(MPI_Irecv(&incoming_[static_cast<size_t>(n) * (r - 1)], n, MPI_UINT64_T, r,
                              kTagBits, comm_, &requests_[r - 1]));
  }
  BRAID_RETURN_IF_ERROR(WaitAllPolitely(size_ - 1, requests_.data(), spin_us));
  for (int r = 1; r < size_; ++r) {
    const uint64_t* theirs = &incoming_[static_cast<size_t>(n) * (r - 1)];
    for (int i = 0; i < n; ++i) (*words)[i] &= theirs[i];
  }
  for (int r = 1; r < size_; ++r) {
    BRAID_CHECK_MPI(
        MPI_Isend(words->data(), n, MPI_UINT64_T, r, kTagBitsResult, comm_, &requests_[r - 1]));
  }
  return WaitAllPolitely(size_ - 1, requests_.data(), spin_us);
}

}  // namespace mpi
}  // namespace braid
