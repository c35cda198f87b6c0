// What the engine gets from collectives/: where this process sits in the job, the
// control channel and the data-plane backends: MPI or shared memory (ranks on one
// host, collectives/shm/) for host memory, and for GPU
// memory the device plane that the CUDA plugin registers (collectives/device_plane.h).
// Created from the MPI world or from a communicator the caller already has.
#pragma once

#include <memory>
#include <vector>

#include "collectives/backend.h"
#include "collectives/control_channel.h"
#include "collectives/device_ops.h"
#include "collectives/gpu_backend.h"
#include "collectives/host_backend.h"
#include "common/status.h"

namespace braid {

struct WorldInfo {
  int rank = 0;
  int size = 1;
  int local_rank = 0;  // among the ranks on this host
  int local_size = 1;
  int cross_rank = 0;  // index of this host among the hosts
  int cross_size = 1;
  // The process's MPI provides MPI_THREAD_MULTIPLE (any thread may call MPI).
  bool mpi_threads_multiple = false;
};

struct TransportOptions {
  // Pointer to an MPI_Comm to build on; null means MPI_COMM_WORLD. MPI is
  // initialised (MPI_THREAD_MULTIPLE requested) if the caller has not done so.
  const void* mpi_comm = nullptr;
  // Size of the persistent, pre-faulted scratch buffers the host data plane keeps
  // for its ring (bytes).
  int64_t host_scratch_bytes = 64 << 20;
  // A device collective still running this long aborts its communicator and fails
  // (0: never); the engine passes BRAID_STALL_TIMEOUT_SECONDS.
  double device_stall_timeout_seconds = 0.0;
  // How GPU tensors travel (BRAID_GPU_BACKEND); every rank must pass the same value.
  GpuBackend gpu_backend = GpuBackend::kAuto;
  // Which backend carries host-memory collectives (BRAID_HOST_BACKEND); every rank
  // must pass the same value.
  HostBackend host_backend = HostBackend::kAuto;
  // The engine's fusion threshold (BRAID_FUSION_THRESHOLD_BYTES): the shared-memory
  // backend sizes its chunks from it (collectives/shm/shm_backend.h).
  int64_t fusion_threshold_bytes = 64 << 20;
  // Forces the shared-memory backend's slot (chunk) size in bytes; 0 chooses it
  // (BRAID_SHM_SLOT_BYTES, for tests and tuning).
  int64_t shm_slot_bytes = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual const WorldInfo& info() const = 0;
  virtual ControlChannel* control() = 0;
  // Sets up the data plane of `device` (a GPU) on this rank: loads the CUDA
  // plugin the first time, creates the backend and memory operations.
  // Collective: every rank calls it at the same point, each with its own GPU, and
  // every rank gets the same outcome (a rank's failure fails it everywhere). A
  // second call for the same device returns the first outcome without
  // communicating. The engine calls it when the ranks have agreed on their first
  // GPU collective (core/message_table.h).
  virtual Status SetUpDevicePlane(int device) = 0;
  // The backend for buffers on `device`: the host backend, or the device plane
  // set up for that GPU. Null when there is none (with the reason in *why when
  // given).
  virtual Backend* BackendFor(int device, Status* why = nullptr) = 0;
  // The memory operations for `device` (a GPU); null for host memory, or when no
  // plane has been set up for it.
  virtual DeviceOps* DeviceOpsFor(int device) = 0;
  // The host memory the host data plane keeps between collectives (scratch), for
  // placement on the rank's NUMA node. Local.
  virtual std::vector<HostRegion> OwnedHostMemory() const = 0;

  // Ends the job on every rank with `exit_code`, from any thread: unblocks the
  // device planes (Backend::Abort), then MPI_Abort. Does not return.
  [[noreturn]] virtual void Abort(int exit_code) = 0;
};

// Whether this build takes tensors in GPU memory: it was built with CUDA, so the
// device plane plugin (libbraid_cuda.so) exists, or a device plugin has registered
// itself already. Whether it loads, and whether a GPU is there, is only known when
// the first GPU tensor comes.
bool DeviceTensorsSupported();

// Calls `hook` once when MPI_Finalize starts, while MPI still works (the first
// hook registered in the process wins). MPI must be initialised.
void CallBeforeMpiFinalize(void (*hook)());

// Builds the transport: the host plane now, device planes on first use.
Status CreateTransport(const TransportOptions& options, std::unique_ptr<Transport>* out);

}  // namespace braid
