#include "memcpy_bw.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <new>
#include <thread>

#include "timing.h"

namespace bench {
namespace {

char* AllocateTouched(size_t bytes, int value) {
  void* p = nullptr;
  if (posix_memalign(&p, 4096, bytes) != 0) throw std::bad_alloc();
  std::memset(p, value, bytes);
  return static_cast<char*>(p);
}

// Seconds of the fastest of `copies` copies of `bytes` from one buffer to another.
double BestCopySeconds(size_t bytes, int copies) {
  char* from = AllocateTouched(bytes, 1);
  char* to = AllocateTouched(bytes, 0);
  double best = 0;
  for (int i = 0; i < copies; ++i) {
    from[i % bytes] = static_cast<char>(i);  // a new source each time
    const double start = Now();
    std::memcpy(to, from, bytes);
    const double seconds = Now() - start;
    best = i == 0 ? seconds : std::min(best, seconds);
  }
  // Reading the destination keeps the copies from being optimised away.
  volatile char sink = to[(copies - 1) % bytes];
  (void)sink;
  std::free(from);
  std::free(to);
  return best;
}

}  // namespace

MemcpyBandwidth MeasureMemcpy(MPI_Comm comm, int64_t bytes, int copies) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  MemcpyBandwidth result;
  result.bytes = bytes;
  result.copies = copies;
  double seconds = 0;
  if (rank == 0 && bytes > 0 && copies > 0) {
    seconds = BestCopySeconds(static_cast<size_t>(bytes), copies);
  }
  // The other ranks wait without spinning: a busy MPI_Bcast on a sibling hardware
  // thread would take part of rank 0's core.
  MPI_Request request;
  MPI_Ibcast(&seconds, 1, MPI_DOUBLE, 0, comm, &request);
  for (int done = 0; !done;) {
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (!done) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  result.gbps = seconds > 0 ? static_cast<double>(bytes) / seconds / 1e9 : 0;
  return result;
}

}  // namespace bench
