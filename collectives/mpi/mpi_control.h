// ControlChannel over an MPI communicator reserved for the control plane.
//
// Threading: driven by one thread at a time, like every ControlChannel.
#pragma once

#include <mpi.h>

#include <string>
#include <vector>

#include "collectives/control_channel.h"

namespace braid {
namespace mpi {

class MpiControlChannel : public ControlChannel {
 public:
  // `comm` is borrowed and must outlive the channel.
  explicit MpiControlChannel(MPI_Comm comm);

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  Status GatherToRoot(const std::string& mine, std::vector<std::string>* all) override;
  Status BroadcastFromRoot(std::string* bytes) override;
  Status AllreduceBitAnd(std::vector<uint64_t>* words, int spin_us) override;

 private:
  MPI_Comm comm_;
  int rank_ = 0;
  int size_ = 1;
  // Reused across calls: the controller gathers every cycle.
  std::vector<int> sizes_;
  std::vector<int> displacements_;
  std::vector<char> gathered_;
  std::vector<uint64_t> incoming_;
  std::vector<MPI_Request> requests_;
};

}  // namespace mpi
}  // namespace braid
