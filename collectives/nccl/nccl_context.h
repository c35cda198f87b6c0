// The NCCL side of the device data plane: the one CUDA device this process uses,
// a communicator over every rank of the control channel, and the backend's own
// non-blocking stream on that device.
//
// Set-up is collective over the control channel, so this folder needs no mpi.h:
// rank 0 creates the ncclUniqueId and broadcasts it as a string; then every rank
// says whether its local set-up (device, stream, the id) worked, and the ranks
// agree (a bitwise AND) before any of them enters ncclCommInitRank. A rank that
// fails early therefore fails every rank with an error instead of leaving the
// others in NCCL's bootstrap. ncclCommInitRank itself blocks until all ranks join.
//
// Teardown: ncclCommDestroy while the communicator is healthy; ncclCommAbort once
// it has failed or stalled (Abort()), which frees it without waiting for peers and
// makes its kernels still on the device exit.
//
// Threading: Create and the destructor on one thread. Abort() may be called from
// another thread (the completion watchdog) while the owner is not inside an NCCL
// call on this communicator; it is idempotent.
#pragma once

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <atomic>
#include <memory>
#include <string>

#include "collectives/control_channel.h"
#include "collectives/transport.h"
#include "common/status.h"

namespace braid {
namespace nccl {

class NcclContext {
 public:
  // Collective over `control`: every rank calls it. `device` < 0 picks
  // world.local_rank modulo the number of visible devices.
  static Status Create(ControlChannel* control, const WorldInfo& world, int device,
                       std::unique_ptr<NcclContext>* out);
  ~NcclContext();

  NcclContext(const NcclContext&) = delete;
  NcclContext& operator=(const NcclContext&) = delete;

  int device() const { return device_; }
  int rank() const { return rank_; }
  int size() const { return size_; }
  ncclComm_t comm() const { return comm_; }
  cudaStream_t stream() const { return stream_; }

  // ncclCommAbort, once: later calls return OK and do nothing. After it the
  // communicator must not be used again.
  Status Abort();
  bool aborted() const { return aborted_.load(); }

 private:
  NcclContext(int rank, int size) : rank_(rank), size_(size) {}
  Status InitLocal(const WorldInfo& world, int device);
  Status InitComm(const std::string& id);

  int device_ = -1;
  int rank_ = 0;
  int size_ = 1;
  cudaStream_t stream_ = nullptr;
  ncclComm_t comm_ = nullptr;
  std::atomic<bool> aborted_{false};
};

}  // namespace nccl
}  // namespace braid
