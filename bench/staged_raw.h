// The staged raw path (raw_path.h) and the nccl one (nccl_raw.cc, or its absence).
#ifndef BRAID_BENCH_STAGED_RAW_H_
#define BRAID_BENCH_STAGED_RAW_H_

#include <mpi.h>

#include <memory>
#include <string>

#include "cuda_memory.h"
#include "dtype.h"
#include "raw_path.h"

namespace bench {

// Device buffers copied to pinned host memory on `memory`'s stream, the MPI
// collective on `comm` there, and copied back; each step waits for the last.
std::unique_ptr<RawPath> MakeStagedRaw(MPI_Comm comm, const DType& dtype, int op,
                                       CudaMemory& memory);

// Whether this build has the nccl raw path.
bool NcclRawBuilt();
// The nccl raw path on `memory`'s device and stream: a communicator over `comm`'s
// ranks from an ncclUniqueId that rank 0 broadcasts. Collective. Returns "" or, on
// every rank, why the id could not be made; a failing ncclCommInitRank aborts.
std::string MakeNcclRaw(MPI_Comm comm, const DType& dtype, int op, CudaMemory& memory,
                        std::unique_ptr<RawPath>* out);

}  // namespace bench

#endif  // BRAID_BENCH_STAGED_RAW_H_
