#include "ops/compress/parallel.h"

#include <algorithm>
#include <thread>
#include <vector>

namespace braid::compress {

int ThreadsFor(int64_t n, int requested) {
  int64_t threads = requested > 0 ? requested : std::thread::hardware_concurrency();
  threads = std::min(threads, n / kMinElementsPerThread);
  return static_cast<int>(std::max<int64_t>(threads, 1));
}

void ParallelChunks(int64_t n, int chunks, const std::function<void(int, int64_t, int64_t)>& fn) {
  if (chunks <= 1) {
    fn(0, 0, n);
    return;
  }
  std::vector<std::thread> threads;
  threads.reserve(chunks - 1);
  for (int c = 1; c < chunks; ++c) {
    threads.emplace_back(
        [&fn, n, chunks, c] { fn(c, ChunkBegin(n, chunks, c), ChunkBegin(n, chunks, c + 1)); });
  }
  fn(0, 0, ChunkBegin(n, chunks, 1));
  for (auto& t : threads) t.join();
}

}  // namespace braid::compress
