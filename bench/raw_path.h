// The raw path: the collective a user would call instead of braid, on the same
// buffers, on a communicator of its own (never braid's). Three kinds:
//
//   mpi     host buffers (--device cpu): MPI_Allreduce(MPI_IN_PLACE), MPI_Allgather,
//           MPI_Bcast on a duplicate of MPI_COMM_WORLD (raw_ops.cc);
//   nccl    device buffers, one GPU per rank: ncclAllReduce, ncclAllGather,
//           ncclBroadcast on a communicator the bench creates, on the bench's stream,
//           then cudaStreamSynchronize (nccl_raw.cc);
//   staged  device buffers, ranks sharing a GPU or BRAID_GPU_BACKEND=mpi (the engine's
//           host-staged path): cudaMemcpy into pinned host memory, the MPI collective
//           on it, cudaMemcpy back (staged_raw.cc). Its host_only() is the MPI
//           collective alone on the pinned buffers, without the copies.
//
// Every operation is complete when it returns. Average: the sum divided by the
// number of ranks as the engine does it (ncclAvg on NCCL). Any failure aborts the job
// with a message naming the call.
#ifndef BRAID_BENCH_RAW_PATH_H_
#define BRAID_BENCH_RAW_PATH_H_

#include <mpi.h>

#include <cstdint>
#include <memory>
#include <string>

#include "dtype.h"
#include "options.h"

namespace bench {

class RawPath {
 public:
  virtual ~RawPath() = default;

  virtual const char* kind() const = 0;  // "mpi", "nccl" or "staged"
  // What one timed call of `collective` does, for the header.
  virtual std::string Describe(Collective collective) const = 0;

  // In-place allreduce of `count` elements with the (dtype, op) of construction.
  virtual void Allreduce(void* data, int64_t count) = 0;
  // `count` elements from each rank into `output` (count * ranks elements).
  virtual void Allgather(const void* input, void* output, int64_t count) = 0;
  // In-place broadcast of `count` elements from `root`.
  virtual void Broadcast(void* data, int64_t count, int root) = 0;

  // staged only: the same collectives on the pinned host buffers the last calls
  // staged through, ignoring the pointers passed; nullptr for the other kinds.
  virtual RawPath* host_only() { return nullptr; }
};

// The mpi kind, on `comm` (which must outlive it).
std::unique_ptr<RawPath> MakeMpiRaw(MPI_Comm comm, const DType& dtype, int op);

}  // namespace bench

#endif  // BRAID_BENCH_RAW_PATH_H_
