// The order every selection kernel of ops/compress/ agrees on, shared by the host
// code and the CUDA kernels (this header compiles under nvcc too).
//
// An element's magnitude key is the bit pattern of |x| (the sign bit cleared) read
// as an unsigned integer: for IEEE floats that integer order is the order of |x|,
// so a radix select over the key's bits and an integer compare on the host agree
// exactly, for every dtype, without floating-point arithmetic. Rules:
//   - -0 and +0 have the same key (0);
//   - +-inf have the largest key of a number;
//   - every NaN gets one key, above inf: NaN counts as the largest magnitude (as in
//     torch.topk), so a gradient that went NaN is sent, not silently kept in the
//     memory.
// Ties (equal keys) are broken by the smaller index first; a selection returns its
// indices in ascending order.
//
// Also here: the counter-based hash behind the deterministic sampling of the
// threshold estimate (the same positions on the host and on a GPU).
#pragma once

#include <cstdint>

#ifdef __CUDACC__
#define BRAID_HD __host__ __device__ __forceinline__
#else
#define BRAID_HD inline
#endif

namespace braid::compress {

// Key traits per value dtype: Bits is the storage (and key) type.
struct HalfKey {  // IEEE float16
  using Bits = uint16_t;
  static constexpr Bits kAbsMask = 0x7fff;
  static constexpr Bits kInf = 0x7c00;
};
struct BFloat16Key {
  using Bits = uint16_t;
  static constexpr Bits kAbsMask = 0x7fff;
  static constexpr Bits kInf = 0x7f80;
};
struct FloatKey {
  using Bits = uint32_t;
  static constexpr Bits kAbsMask = 0x7fffffffu;
  static constexpr Bits kInf = 0x7f800000u;
};
struct DoubleKey {
  using Bits = uint64_t;
  static constexpr Bits kAbsMask = 0x7fffffffffffffffull;
  static constexpr Bits kInf = 0x7ff0000000000000ull;
};

// The one key every NaN maps to: just above inf.
template <typename K>
BRAID_HD constexpr typename K::Bits NanKey() {
  return static_cast<typename K::Bits>(K::kInf + 1);
}

// The magnitude key of an element given its bits.
template <typename K>
BRAID_HD typename K::Bits MagnitudeKey(typename K::Bits bits) {
  const typename K::Bits a = static_cast<typename K::Bits>(bits & K::kAbsMask);
  return a > NanKey<K>() ? NanKey<K>() : a;
}

// splitmix64's finaliser: a bijection of 64-bit integers whose outputs look
// uniform; hashing (seed, counter) gives a reproducible stream on any device.
BRAID_HD uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// The j-th draw of the stream `seed`.
BRAID_HD uint64_t HashDraw(uint64_t seed, uint64_t j) {
  return Mix64(seed * 0x9e3779b97f4a7c15ull + (j + 1) * 0xd1b54a32d192ed03ull);
}

// A position in [0, n) from a 64-bit draw: the high word of draw * n, so integer
// arithmetic only (the same result on every device and compiler).
BRAID_HD uint64_t ScaleToRange(uint64_t draw, uint64_t n) {
#ifdef __CUDA_ARCH__
  return __umul64hi(draw, n);
#else
  return static_cast<uint64_t>((static_cast<unsigned __int128>(draw) * n) >> 64);
#endif
}

// The position of the threshold estimate's j-th sample in a buffer of n elements
// (drawn with replacement).
BRAID_HD int64_t SamplePosition(uint64_t seed, int64_t j, int64_t n) {
  return static_cast<int64_t>(
      ScaleToRange(HashDraw(seed, static_cast<uint64_t>(j)), static_cast<uint64_t>(n)));
}

}  // namespace braid::compress
