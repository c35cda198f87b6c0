// The MPI collectives of the raw path (raw_path.h) on host buffers: the mpi kind,
// and the host part of the staged kind.
#ifndef BRAID_BENCH_RAW_OPS_H_
#define BRAID_BENCH_RAW_OPS_H_

#include <mpi.h>

#include <cstdint>

#include "dtype.h"
#include "raw_path.h"

namespace bench {

// The MPI type carrying `dtype`: the predefined type, or MPI_UINT16_T for
// float16 and bfloat16 (moved as opaque 2-byte elements).
MPI_Datatype MpiType(int dtype);

// In-place MPI_Allreduce for one (dtype, op). Average is MPI_SUM followed by a
// local division by the number of ranks (what the engine does too); float16 and
// bfloat16 reduce with a user-defined MPI_Op that computes in float.
class RawAllreducer {
 public:
  RawAllreducer(MPI_Comm comm, const DType& dtype, int op);
  ~RawAllreducer();
  RawAllreducer(const RawAllreducer&) = delete;
  RawAllreducer& operator=(const RawAllreducer&) = delete;

  void Run(void* data, int64_t count) const;

 private:
  MPI_Comm comm_;
  const DType& dtype_;
  int ranks_ = 1;
  bool average_ = false;
  MPI_Datatype type_;
  MPI_Op op_ = MPI_OP_NULL;
  bool user_op_ = false;
};

void RawAllgather(MPI_Comm comm, const void* input, void* output, int64_t count, int dtype);
void RawBroadcast(MPI_Comm comm, void* data, int64_t count, int dtype, int root);

}  // namespace bench

#endif  // BRAID_BENCH_RAW_OPS_H_
