// The host selection kernels (host_kernels.h) on the passes of host_passes.h.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "ops/compress/dtype_dispatch.h"
#include "ops/compress/host_kernels.h"
#include "ops/compress/host_passes.h"

namespace braid::compress::host {
namespace {

// Below this many elements one nth_element over every key beats estimating.
constexpr int64_t kSmallBuffer = int64_t{1} << 16;
// The estimate's sample: blocks of contiguous elements at evenly spaced places
// (a few thousand cache lines rather than one per sampled element), one block per
// 4096 elements, between 64 and 1024 blocks: 4 Ki to 64 Ki keys.
constexpr int64_t kSampleBlock = 64;

int64_t SampleBlocks(int64_t n) {
  return std::clamp<int64_t>(n / 4096, 64, 1024);
}

// The estimate's sample of keys (n is larger than kSmallBuffer).
template <typename K>
std::vector<BitsOf<K>> BlockSample(const BitsOf<K>* x, int64_t n) {
  const int64_t blocks = SampleBlocks(n);
  std::vector<BitsOf<K>> sample;
  sample.reserve(blocks * kSampleBlock);
  for (int64_t j = 0; j < blocks; ++j) {
    const int64_t start = (n - kSampleBlock) * j / (blocks - 1);
    for (int64_t i = start; i < start + kSampleBlock; ++i) {
      sample.push_back(MagnitudeKey<K>(x[i]));
    }
  }
  return sample;
}

// The rank in the sample whose key is the threshold: the expected number of the
// top k in the sample plus three standard deviations, so that the filter pass
// misses fewer than k elements only rarely.
int64_t InitialRank(int64_t k, int64_t n, int64_t m) {
  const double expected = static_cast<double>(k) * static_cast<double>(m) / static_cast<double>(n);
  return static_cast<int64_t>(std::ceil(expected + 3.0 * std::sqrt(expected) + 8.0));
}

template <typename K>
BitsOf<K> NthLargest(std::vector<BitsOf<K>> keys, int64_t rank) {
  if (rank > static_cast<int64_t>(keys.size())) return 0;
  std::nth_element(keys.begin(), keys.begin() + (rank - 1), keys.end(), std::greater<BitsOf<K>>());
  return keys[rank - 1];
}

template <typename K>
void WriteAll(int64_t n, int chunks, const Writer<K>& w) {
  ParallelChunks(n, chunks, [&](int, int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) w.Put(i, i);
  });
}

// Exact top-k, 1 <= k < n: estimate a threshold t from the sample, collect the
// candidates above it, and finish on them; when the ties at t decide, t is the
// k-th key itself; when t was too high, retry lower; when the candidates overflow
// (a sample far from the buffer's distribution), radix select.
template <typename K>
void TopKTyped(const BitsOf<K>* x, int64_t n, int64_t k, int threads, const Writer<K>& w) {
  using Bits = BitsOf<K>;
  const int chunks = ThreadsFor(n, threads);
  if (n <= kSmallBuffer) {
    std::vector<ChunkScan> all(1);
    all[0].above.resize(n);
    for (int64_t i = 0; i < n; ++i) all[0].above[i] = i;
    FinishOnCandidates<K>(x, all, k, w);
    return;
  }
  const std::vector<Bits> sample = BlockSample<K>(x, n);
  const int64_t m = static_cast<int64_t>(sample.size());
  const size_t cap = static_cast<size_t>(2 * k + n / 64 + 4096);
  int64_t rank = InitialRank(k, n, m);
  for (int attempt = 0; attempt < 3; ++attempt, rank *= 4) {
    const Bits t = NthLargest<K>(sample, rank);
    const std::vector<ChunkScan> scans = Filter<K>(x, n, t, chunks, cap);
    int64_t above = 0, equal = 0;
    bool overflow = false;
    for (const ChunkScan& s : scans) {
      above += s.above_count;
      equal += s.equal_count;
      overflow = overflow || s.overflow;
    }
    if (above >= k && !overflow) return FinishOnCandidates<K>(x, scans, k, w);
    if (above < k && above + equal >= k) {
      // The k-th key is t itself: every key above t and the first ties.
      return WriteByThreshold<K>(x, n, t, k - above, chunks, &scans, w);
    }
    if (overflow) break;
  }
  Bits T = 0;
  int64_t take = 0;
  RadixSelect<K>(x, n, k, chunks, &T, &take);
  WriteByThreshold<K>(x, n, T, take, chunks, nullptr, w);
}

}  // namespace

Status TopK(const DeviceValues& x, int64_t k, const DeviceSelectionOut& out, int threads) {
  WithKeyTraits(x.dtype, [&](auto traits) {
    using K = decltype(traits);
    const auto* data = static_cast<const BitsOf<K>*>(x.data);
    const Writer<K> w{data, out};
    if (k == 0) return 0;
    if (k == x.n) {
      WriteAll<K>(x.n, ThreadsFor(x.n, threads), w);
    } else {
      TopKTyped<K>(data, x.n, k, threads, w);
    }
    return 0;
  });
  return Status::OK();
}

void SampleKeys(const DeviceValues& x, uint64_t seed, int64_t m, uint64_t* keys) {
  WithKeyTraits(x.dtype, [&](auto traits) {
    using K = decltype(traits);
    const auto* data = static_cast<const BitsOf<K>*>(x.data);
    for (int64_t j = 0; j < m; ++j) keys[j] = MagnitudeKey<K>(data[SamplePosition(seed, j, x.n)]);
    return 0;
  });
}

int64_t CountAtLeast(const DeviceValues& x, uint64_t threshold, int threads) {
  return WithKeyTraits(x.dtype, [&](auto traits) {
    using K = decltype(traits);
    const auto* data = static_cast<const BitsOf<K>*>(x.data);
    const auto t = static_cast<BitsOf<K>>(threshold);
    const int chunks = ThreadsFor(x.n, threads);
    std::vector<int64_t> counts(chunks);
    // key >= t is raw |x| bits >= t for any t up to NaN's key (every NaN pattern
    // is at least that): signed compares without the NaN clamp, which vectorise.
    using S = std::make_signed_t<BitsOf<K>>;
    const auto* xs = reinterpret_cast<const S*>(data);
    const auto mask = static_cast<S>(K::kAbsMask), ts = static_cast<S>(t);
    ParallelChunks(x.n, chunks, [&](int c, int64_t b, int64_t e) {
      int64_t count = 0;
      for (int64_t i = b; i < e; ++i) count += static_cast<S>(xs[i] & mask) >= ts;
      counts[c] = count;
    });
    int64_t total = 0;
    for (int64_t c : counts) total += c;
    return total;
  });
}

Status SelectAtLeast(const DeviceValues& x, uint64_t threshold, int64_t candidates, int64_t k,
                     const DeviceSelectionOut& out, int threads) {
  const int64_t cap = 2 * k + x.n / 64 + 4096;
  if (candidates > k && (threshold == 0 || candidates > cap)) {
    // At least k elements reach the threshold, so the top k of them are the top k
    // of the buffer: the exact kernel handles any number of candidates.
    return TopK(x, k, out, threads);
  }
  WithKeyTraits(x.dtype, [&](auto traits) {
    using K = decltype(traits);
    const auto* data = static_cast<const BitsOf<K>*>(x.data);
    const auto t = static_cast<BitsOf<K>>(threshold);
    const Writer<K> w{data, out};
    const int chunks = ThreadsFor(x.n, threads);
    if (candidates <= k) {
      // Every element at or above the threshold: the ties at t are all taken.
      WriteByThreshold<K>(data, x.n, t, x.n, chunks, nullptr, w);
    } else {
      // key >= t is key > t - 1 (integer keys): collect, then trim to k.
      const auto scans =
          Filter<K>(data, x.n, static_cast<BitsOf<K>>(t - 1), chunks, static_cast<size_t>(cap));
      FinishOnCandidates<K>(data, scans, k, w);
    }
    return 0;
  });
  return Status::OK();
}

void Gather(const DeviceValues& x, const void* indices, DataType index_dtype, int64_t count,
            void* values) {
  WithKeyTraits(x.dtype, [&](auto traits) {
    using Bits = BitsOf<decltype(traits)>;
    const auto* data = static_cast<const Bits*>(x.data);
    auto* v = static_cast<Bits*>(values);
    if (index_dtype == DataType::kInt64) {
      const auto* idx = static_cast<const int64_t*>(indices);
      for (int64_t j = 0; j < count; ++j) v[j] = data[idx[j]];
    } else {
      const auto* idx = static_cast<const int32_t*>(indices);
      for (int64_t j = 0; j < count; ++j) v[j] = data[idx[j]];
    }
    return 0;
  });
}

}  // namespace braid::compress::host
