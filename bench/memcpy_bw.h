// The single-core memcpy bandwidth of rank 0's host, measured in the same run as
// the collectives, so that bus bandwidths can be read as a fraction of it.
#ifndef BRAID_BENCH_MEMCPY_BW_H_
#define BRAID_BENCH_MEMCPY_BW_H_

#include <mpi.h>

#include <cstdint>

namespace bench {

struct MemcpyBandwidth {
  int64_t bytes = 0;  // size of one copy
  int copies = 0;     // copies timed; the best is kept
  double gbps = 0;    // bytes / best copy's seconds / 1e9: bytes copied once, not read + write
};

// Rank 0 copies one `bytes` buffer to another with std::memcpy `copies` times (both
// buffers page aligned and written first, so no page fault is timed) while the
// other ranks wait, sleeping; every rank returns rank 0's result.
MemcpyBandwidth MeasureMemcpy(MPI_Comm comm, int64_t bytes, int copies);

}  // namespace bench

#endif  // BRAID_BENCH_MEMCPY_BW_H_
