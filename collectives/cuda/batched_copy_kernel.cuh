// The batched copy kernel. Every entry is cut into tiles of kTileBytes; tiles are
// numbered across the batch (entry i owns tiles first_tile[i] ..), and block b
// handles tiles b, b + gridDim.x, ... finding each tile's entry by binary search
// over first_tile. Within a tile the block moves 16-byte vectors where src and dst
// share their address modulo 16 (narrower words for the plain copy otherwise), each
// thread issuing kUnroll loads before its stores so that enough bytes are in flight
// to saturate device memory.
//
// The descriptors are a __grid_constant__ kernel parameter: read in place from the
// parameter bank, never copied to local memory, no separate host-to-device copy.
#pragma once

#include <cstdint>
#include <cstring>

#include "collectives/cuda/scale_element.cuh"

namespace braid {
namespace cuda {
namespace detail {

constexpr int kThreads = 256;
constexpr int kUnroll = 4;
constexpr int kTileBytes = kThreads * kUnroll * 16;  // 16 KiB: one round of vectors
// At most 64 registers a thread, which the widest kernels need without spilling;
// 4 blocks of 256 threads keep 64 KiB of loads in flight per SM, several times what
// device memory's latency-bandwidth product asks for.
constexpr int kMinBlocksPerSm = 4;

// `count` is in the tile operation's Storage units (bytes for the plain copy).
struct DeviceEntry {
  const void* src;
  void* dst;
  int64_t count;
  int64_t first_tile;
};

template <int K>
struct Batch {
  DeviceEntry entries[K];
  int64_t total_tiles;
  int num;  // entries used; every one has count > 0
};

// The last entry whose first tile is <= tile, searching from `lo` (tiles only grow
// within a block, so the previous answer is a lower bound).
template <int K>
__device__ __forceinline__ int FindEntry(const Batch<K>& batch, int64_t tile, int lo) {
  int hi = batch.num - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (batch.entries[mid].first_tile <= tile) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

// dst[i] = f(src[i]) for i < n, by the whole block. Each index is read and written
// by one thread, the read first, so src == dst is safe.
template <class U, class F>
__device__ __forceinline__ void StridedApply(const U* src, U* dst, int n, const F& f) {
  for (int base = threadIdx.x; base < n; base += kUnroll * kThreads) {
    U v[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int i = base + u * kThreads;
      if (i < n) v[u] = src[i];
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int i = base + u * kThreads;
      if (i < n) dst[i] = f(v[u]);
    }
  }
}

// n elements of type S as units of type U (sizeof(U) a multiple of sizeof(S)):
// single elements until dst is U-aligned, then units, then the remaining elements.
// src and dst must agree modulo sizeof(U).
template <class S, class U, class F>
__device__ __forceinline__ void ApplyTile(const S* src, S* dst, int n, const F& f) {
  constexpr int kLanes = static_cast<int>(sizeof(U) / sizeof(S));
  const auto misalign = reinterpret_cast<uintptr_t>(dst) % sizeof(U);
  int head = static_cast<int>((sizeof(U) - misalign) % sizeof(U) / sizeof(S));
  head = head < n ? head : n;
  const int units = (n - head) / kLanes;
  const int done = head + units * kLanes;
  StridedApply(src, dst, head, f);
  StridedApply(reinterpret_cast<const U*>(src + head), reinterpret_cast<U*>(dst + head), units, f);
  StridedApply(src + done, dst + done, n - done, f);
}

struct Identity {
  template <class U>
  __device__ __forceinline__ U operator()(U v) const {
    return v;
  }
};

// The plain copy: bytes, in the widest word on which src and dst agree.
struct CopyTile {
  using Storage = unsigned char;
  __device__ __forceinline__ void operator()(const Storage* src, Storage* dst, int n) const {
    const uintptr_t x = reinterpret_cast<uintptr_t>(src) ^ reinterpret_cast<uintptr_t>(dst);
    if (x % 16 == 0) return ApplyTile<Storage, uint4>(src, dst, n, Identity{});
    if (x % 8 == 0) return ApplyTile<Storage, uint2>(src, dst, n, Identity{});
    if (x % 4 == 0) return ApplyTile<Storage, unsigned int>(src, dst, n, Identity{});
    if (x % 2 == 0) return ApplyTile<Storage, unsigned short>(src, dst, n, Identity{});
    ApplyTile<Storage, Storage>(src, dst, n, Identity{});
  }
};

// One element, or the elements packed in a 16-byte vector.
template <class Element>
struct ElementOp {
  using S = typename Element::Storage;
  ElementScaling scaling;
  __device__ __forceinline__ S operator()(S x) const { return ApplyScaling<Element>(x, scaling); }
  __device__ __forceinline__ uint4 operator()(uint4 v) const {
    constexpr int kLanes = static_cast<int>(sizeof(uint4) / sizeof(S));
    S lanes[kLanes];
    memcpy(lanes, &v, sizeof v);
#pragma unroll
    for (int k = 0; k < kLanes; ++k) lanes[k] = ApplyScaling<Element>(lanes[k], scaling);
    memcpy(&v, lanes, sizeof v);
    return v;
  }
};

// The scaled copy: elements, in 16-byte vectors when src and dst agree modulo 16.
template <class Element>
struct ScaleTile {
  using Storage = typename Element::Storage;
  ElementOp<Element> op;
  __device__ __forceinline__ void operator()(const Storage* src, Storage* dst, int n) const {
    const uintptr_t x = reinterpret_cast<uintptr_t>(src) ^ reinterpret_cast<uintptr_t>(dst);
    if (x % 16 == 0) return ApplyTile<Storage, uint4>(src, dst, n, op);
    ApplyTile<Storage, Storage>(src, dst, n, op);
  }
};

template <class TileOp>
__host__ __device__ constexpr int64_t TileUnits() {
  return kTileBytes / static_cast<int64_t>(sizeof(typename TileOp::Storage));
}

// Host side: copies `num` entries into a launch's parameter block, numbering their
// tiles. Returns the number of tiles.
template <int K, class TileOp>
int64_t FillBatch(const DeviceEntry* entries, int num, Batch<K>* batch) {
  constexpr int64_t kUnits = TileUnits<TileOp>();
  int64_t tiles = 0;
  for (int i = 0; i < num; ++i) {
    batch->entries[i] = entries[i];
    batch->entries[i].first_tile = tiles;
    tiles += (entries[i].count + kUnits - 1) / kUnits;
  }
  batch->num = num;
  batch->total_tiles = tiles;
  return tiles;
}

template <int K, class TileOp>
__global__ void __launch_bounds__(kThreads, kMinBlocksPerSm)
    BatchedKernel(const __grid_constant__ Batch<K> batch, const TileOp op) {
  using S = typename TileOp::Storage;
  constexpr int64_t kUnits = TileUnits<TileOp>();
  int entry = 0;
  for (int64_t tile = blockIdx.x; tile < batch.total_tiles; tile += gridDim.x) {
    entry = FindEntry(batch, tile, entry);
    const DeviceEntry& e = batch.entries[entry];
    const int64_t first = (tile - e.first_tile) * kUnits;
    const int64_t left = e.count - first;
    const int n = static_cast<int>(left < kUnits ? left : kUnits);
    op(static_cast<const S*>(e.src) + first, static_cast<S*>(e.dst) + first, n);
  }
}

}  // namespace detail
}  // namespace cuda
}  // namespace braid
