// Host threads for the compress kernels: a buffer split into equal chunks, one
// std::thread per chunk beyond the first (which the caller runs). The kernels are
// memory-bound passes, so a pass is worth threads only on large buffers.
//
// Threading: ParallelChunks returns after every chunk has run; `fn` must be safe to
// call concurrently for different chunks.
#pragma once

#include <cstdint>
#include <functional>

namespace braid::compress {

// Elements below which another thread does not pay for its start (~tens of us).
constexpr int64_t kMinElementsPerThread = int64_t{1} << 17;

// The threads a pass over n elements uses: `requested` (0: hardware_concurrency),
// at most one per kMinElementsPerThread elements, at least 1.
int ThreadsFor(int64_t n, int requested);

// Runs fn(chunk, begin, end) for chunk = 0..chunks-1, the chunks splitting [0, n)
// in order into near-equal ranges, each on its own thread.
void ParallelChunks(int64_t n, int chunks, const std::function<void(int, int64_t, int64_t)>& fn);

// The begin of chunk c of `chunks` over [0, n) (ChunkBegin(n, chunks, chunks) == n).
inline int64_t ChunkBegin(int64_t n, int chunks, int c) {
  return static_cast<int64_t>(static_cast<__int128>(n) * c / chunks);
}

}  // namespace braid::compress
