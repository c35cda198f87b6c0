// GPU selection kernels of the compress ops (device_kernels.h): exact top-k by
// radix select over the magnitude keys (magnitude.h) and an ordered compaction,
// and the threshold estimate's sample, count and final selection. No sort of the
// buffer: a histogram pass per 8 bits of the key finds the k-th key T, then two
// passes over tiles write every element above T and the first ones equal to T in
// index order, which is the host kernels' order (ascending indices).
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

#include <climits>

#include "ops/compress/compress_kernels_cuda.h"
#include "ops/compress/cuda_support.cuh"
#include "ops/compress/dtype_dispatch.h"
#include "ops/compress/magnitude.h"

namespace braid::compress::cuda {
namespace {

constexpr int kItems = 8;                     // elements per thread in a tile
constexpr int64_t kTile = kThreads * kItems;  // elements per tile (one block)
constexpr int kScanThreads = 1024;

// The radix select's state, in device memory: the key's decided high digits
// (prefix under mask), and how many of the top k are still to be found among the
// elements that match them. After the last digit, prefix is T and remaining the
// number of elements equal to T that belong to the top k.
struct SelectState {
  unsigned long long hist[256];
  unsigned long long prefix;
  unsigned long long mask;
  long long remaining;
};

template <typename K>
__device__ __forceinline__ unsigned long long KeyAt(const typename K::Bits* x, int64_t i) {
  return MagnitudeKey<K>(x[i]);
}

__global__ void InitStateKernel(SelectState* s, unsigned long long prefix, long long remaining) {
  for (int d = threadIdx.x; d < 256; d += blockDim.x) s->hist[d] = 0;
  if (threadIdx.x == 0) {
    s->prefix = prefix;
    s->mask = 0;
    s->remaining = remaining;
  }
}

// One digit's histogram over the elements whose higher digits match the prefix.
template <typename K>
__global__ void HistogramKernel(const typename K::Bits* __restrict__ x, int64_t n, SelectState* s,
                                int shift) {
  __shared__ unsigned int local[256];
  for (int d = threadIdx.x; d < 256; d += blockDim.x) local[d] = 0;
  __syncthreads();
  const unsigned long long prefix = s->prefix, mask = s->mask;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{blockDim.x} * gridDim.x) {
    const unsigned long long key = KeyAt<K>(x, i);
    if ((key & mask) == prefix) atomicAdd(&local[(key >> shift) & 0xff], 1u);
  }
  __syncthreads();
  for (int d = threadIdx.x; d < 256; d += blockDim.x) {
    if (local[d] != 0) atomicAdd(&s->hist[d], static_cast<unsigned long long>(local[d]));
  }
}

// Picks the digit that holds the remaining k-th key, from the top digit down.
__global__ void ChooseDigitKernel(SelectState* s, int shift) {
  long long remaining = s->remaining;
  int digit = 255;
  for (; digit > 0; --digit) {
    const auto count = static_cast<long long>(s->hist[digit]);
    if (remaining <= count) break;
    remaining -= count;
  }
  s->prefix |= static_cast<unsigned long long>(digit) << shift;
  s->mask |= 0xffull << shift;
  s->remaining = remaining;
  for (int d = 0; d < 256; ++d) s->hist[d] = 0;
}

// Per tile: how many keys are above T and equal to T.
template <typename K>
__global__ void TileCountKernel(const typename K::Bits* __restrict__ x, int64_t n,
                                const SelectState* s, long long* above, long long* equal) {
  using Reduce = cub::BlockReduce<long long, kThreads>;
  __shared__ typename Reduce::TempStorage storage;
  const unsigned long long T = s->prefix;
  long long a = 0, e = 0;
  for (int j = 0; j < kItems; ++j) {
    const int64_t i = blockIdx.x * kTile + j * kThreads + threadIdx.x;  // coalesced
    if (i < n) {
      const unsigned long long key = KeyAt<K>(x, i);
      a += key > T;
      e += key == T;
    }
  }
  a = Reduce(storage).Sum(a);
  __syncthreads();
  e = Reduce(storage).Sum(e);
  if (threadIdx.x == 0) {
    above[blockIdx.x] = a;
    equal[blockIdx.x] = e;
  }
}

// Exclusive prefix sums of both tile counts, in one block (a carry between rounds).
__global__ void ScanTilesKernel(long long* above, long long* equal, int64_t tiles) {
  using Scan = cub::BlockScan<long long, kScanThreads>;
  __shared__ typename Scan::TempStorage storage;
  __shared__ long long carry_above, carry_equal;
  if (threadIdx.x == 0) carry_above = carry_equal = 0;
  __syncthreads();
  for (int64_t base = 0; base < tiles; base += kScanThreads) {
    const int64_t i = base + threadIdx.x;
    long long a = i < tiles ? above[i] : 0, e = i < tiles ? equal[i] : 0, total_a, total_e;
    Scan(storage).ExclusiveSum(a, a, total_a);
    __syncthreads();
    Scan(storage).ExclusiveSum(e, e, total_e);
    if (i < tiles) {
      above[i] = carry_above + a;
      equal[i] = carry_equal + e;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      carry_above += total_a;
      carry_equal += total_e;
    }
    __syncthreads();
  }
}

// Writes the selected elements of one tile: each thread owns kItems consecutive
// elements, so a block scan of the threads' counts gives every element the number
// of selected elements before it: (above T before it) + min(equal to T before it,
// remaining). `map` (optional) turns a position into the index to write.
template <typename K>
__global__ void TileWriteKernel(const typename K::Bits* __restrict__ x, int64_t n,
                                const SelectState* s, const long long* above_before,
                                const long long* equal_before, const int64_t* map,
                                DeviceSelectionOut out) {
  using Bits = typename K::Bits;
  using Scan = cub::BlockScan<long long, kThreads>;
  __shared__ typename Scan::TempStorage storage;
  const unsigned long long T = s->prefix;
  const long long take = s->remaining;
  const int64_t first = blockIdx.x * kTile + int64_t{threadIdx.x} * kItems;
  long long a = 0, e = 0;
  for (int j = 0; j < kItems && first + j < n; ++j) {
    const unsigned long long key = KeyAt<K>(x, first + j);
    a += key > T;
    e += key == T;
  }
  Scan(storage).ExclusiveSum(a, a);
  __syncthreads();
  Scan(storage).ExclusiveSum(e, e);
  a += above_before[blockIdx.x];
  e += equal_before[blockIdx.x];
  for (int j = 0; j < kItems && first + j < n; ++j) {
    const int64_t i = first + j;
    const unsigned long long key = KeyAt<K>(x, i);
    long long pos = -1;
    if (key > T) {
      pos = a + (e < take ? e : take);
      ++a;
    } else if (key == T) {
      if (e < take) pos = a + e;
      ++e;
    }
    if (pos < 0) continue;
    const int64_t index = (map != nullptr ? map[i] : i) + out.index_base;
    if (out.index_dtype == DataType::kInt64) {
      static_cast<int64_t*>(out.indices)[pos] = index;
    } else {
      static_cast<int32_t*>(out.indices)[pos] = static_cast<int32_t>(index);
    }
    if (out.values != nullptr) static_cast<Bits*>(out.values)[pos] = x[i];
  }
}

// The radix select: after it, the state holds T and the ties to take.
template <typename K>
void RadixSelect(const typename K::Bits* x, int64_t n, int64_t k, SelectState* state,
                 cudaStream_t stream) {
  InitStateKernel<<<1, 256, 0, stream>>>(state, 0, k);
  for (int shift = static_cast<int>(sizeof(typename K::Bits)) * 8 - 8; shift >= 0; shift -= 8) {
    HistogramKernel<K><<<BlocksFor(n), kThreads, 0, stream>>>(x, n, state, shift);
    ChooseDigitKernel<<<1, 1, 0, stream>>>(state, shift);
  }
}

// The ordered compaction for the T and ties in `state`.
template <typename K>
Status Compact(const typename K::Bits* x, int64_t n, const SelectState* state, const int64_t* map,
               const DeviceSelectionOut& out, cudaStream_t stream) {
  const int64_t tiles = (n + kTile - 1) / kTile;
  Scratch counts(stream);
  BRAID_RETURN_IF_ERROR(counts.Allocate(2 * tiles * sizeof(long long)));
  long long* above = counts.As<long long>();
  long long* equal = above + tiles;
  TileCountKernel<K><<<tiles, kThreads, 0, stream>>>(x, n, state, above, equal);
  ScanTilesKernel<<<1, kScanThreads, 0, stream>>>(above, equal, tiles);
  TileWriteKernel<K><<<tiles, kThreads, 0, stream>>>(x, n, state, above, equal, map, out);
  return Check(cudaGetLastError(), "compaction launch");
}

template <typename K>
Status TopKTyped(const DeviceValues& xv, int64_t k, const DeviceSelectionOut& out,
                 cudaStream_t stream) {
  const auto* x = static_cast<const typename K::Bits*>(xv.data);
  Scratch state(stream);
  BRAID_RETURN_IF_ERROR(state.Allocate(sizeof(SelectState)));
  if (k == xv.n) {
    InitStateKernel<<<1, 256, 0, stream>>>(state.As<SelectState>(), 0, LLONG_MAX);  // key >= 0
  } else {
    RadixSelect<K>(x, xv.n, k, state.As<SelectState>(), stream);
  }
  return Compact<K>(x, xv.n, state.As<SelectState>(), nullptr, out, stream);
}

template <typename K>
__global__ void SampleKernel(const typename K::Bits* __restrict__ x, int64_t n, uint64_t seed,
                             int64_t m, unsigned long long* keys) {
  for (int64_t j = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; j < m;
       j += int64_t{blockDim.x} * gridDim.x) {
    keys[j] = KeyAt<K>(x, SamplePosition(seed, j, n));
  }
}

template <typename K>
__global__ void CountKernel(const typename K::Bits* __restrict__ x, int64_t n,
                            unsigned long long threshold, unsigned long long* count) {
  using Reduce = cub::BlockReduce<unsigned long long, kThreads>;
  __shared__ typename Reduce::TempStorage storage;
  unsigned long long c = 0;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{blockDim.x} * gridDim.x) {
    c += KeyAt<K>(x, i) >= threshold;
  }
  c = Reduce(storage).Sum(c);
  if (threadIdx.x == 0 && c != 0) atomicAdd(count, c);
}

// Copies `bytes` of device memory to the host and waits for the stream.
Status ReadBack(void* host, const void* device, size_t bytes, cudaStream_t stream) {
  BRAID_RETURN_IF_ERROR(
      Check(cudaMemcpyAsync(host, device, bytes, cudaMemcpyDeviceToHost, stream), "read back"));
  return Check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
}

// The candidates (keys >= threshold) compacted into scratch memory, then the top
// k among them, their positions mapped back to the buffer's indices.
template <typename K>
Status SelectAtLeastTyped(const DeviceValues& xv, uint64_t threshold, int64_t candidates, int64_t k,
                          const DeviceSelectionOut& out, cudaStream_t stream) {
  using Bits = typename K::Bits;
  const auto* x = static_cast<const Bits*>(xv.data);
  Scratch state(stream);
  BRAID_RETURN_IF_ERROR(state.Allocate(sizeof(SelectState)));
  SelectState* s = state.As<SelectState>();
  InitStateKernel<<<1, 256, 0, stream>>>(s, threshold, LLONG_MAX);  // every key >= threshold
  if (candidates <= k) return Compact<K>(x, xv.n, s, nullptr, out, stream);
  Scratch found(stream);
  BRAID_RETURN_IF_ERROR(found.Allocate(candidates * (sizeof(int64_t) + sizeof(Bits))));
  auto* positions = found.As<int64_t>();
  auto* values = found.As<Bits>(candidates * sizeof(int64_t));
  const DeviceSelectionOut all{positions, DataType::kInt64, values, 0};
  BRAID_RETURN_IF_ERROR(Compact<K>(x, xv.n, s, nullptr, all, stream));
  RadixSelect<K>(values, candidates, k, s, stream);
  return Compact<K>(values, candidates, s, positions, out, stream);
}

}  // namespace

Status TopK(int device, const DeviceValues& x, int64_t k, const DeviceSelectionOut& out,
            void* stream) {
  if (k == 0) return Status::OK();
  return OnDevice(device, [&] {
    return WithKeyTraits(x.dtype, [&](auto traits) {
      return TopKTyped<decltype(traits)>(x, k, out, static_cast<cudaStream_t>(stream));
    });
  });
}

Status SampleKeys(int device, const DeviceValues& x, uint64_t seed, int64_t m, uint64_t* host_keys,
                  void* stream) {
  if (m == 0) return Status::OK();
  return OnDevice(device, [&] {
    auto st = static_cast<cudaStream_t>(stream);
    Scratch keys(st);
    BRAID_RETURN_IF_ERROR(keys.Allocate(m * sizeof(unsigned long long)));
    WithKeyTraits(x.dtype, [&](auto traits) {
      using K = decltype(traits);
      SampleKernel<K>
          <<<BlocksFor(m), kThreads, 0, st>>>(static_cast<const typename K::Bits*>(x.data), x.n,
                                              seed, m, keys.As<unsigned long long>());
      return 0;
    });
    BRAID_RETURN_IF_ERROR(Check(cudaGetLastError(), "sample launch"));
    return ReadBack(host_keys, keys.As<void>(), m * sizeof(uint64_t), st);
  });
}

Status CountAtLeast(int device, const DeviceValues& x, uint64_t threshold, int64_t* count,
                    void* stream) {
  return OnDevice(device, [&] {
    auto st = static_cast<cudaStream_t>(stream);
    Scratch total(st);
    BRAID_RETURN_IF_ERROR(total.Allocate(sizeof(unsigned long long)));
    BRAID_RETURN_IF_ERROR(
        Check(cudaMemsetAsync(total.As<void>(), 0, sizeof(unsigned long long), st), "memset"));
    WithKeyTraits(x.dtype, [&](auto traits) {
      using K = decltype(traits);
      CountKernel<K>
          <<<BlocksFor(x.n), kThreads, 0, st>>>(static_cast<const typename K::Bits*>(x.data), x.n,
                                                threshold, total.As<unsigned long long>());
      return 0;
    });
    BRAID_RETURN_IF_ERROR(Check(cudaGetLastError(), "count launch"));
    unsigned long long host = 0;
    BRAID_RETURN_IF_ERROR(ReadBack(&host, total.As<void>(), sizeof host, st));
    *count = static_cast<int64_t>(host);
    return Status::OK();
  });
}

Status SelectAtLeast(int device, const DeviceValues& x, uint64_t threshold, int64_t candidates,
                     int64_t k, const DeviceSelectionOut& out, void* stream) {
  if (candidates == 0 || k == 0) return Status::OK();
  return OnDevice(device, [&] {
    return WithKeyTraits(x.dtype, [&](auto traits) {
      return SelectAtLeastTyped<decltype(traits)>(x, threshold, candidates, k, out,
                                                  static_cast<cudaStream_t>(stream));
    });
  });
}

}  // namespace braid::compress::cuda
