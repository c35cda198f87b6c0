#include "collectives/cpu/mix.h"

#include <algorithm>
#include <string>
#include <vector>

#include "collectives/cpu/half_convert.h"

// Built with -ffp-contract=off (collectives/CMakeLists.txt): a product contracted
// into the following add would round once where the CUDA kernel rounds twice.

namespace braid {
namespace cpu {
namespace {

// The pass runs block by block. Within a block, up to kGroup neighbours are
// added in one loop over the elements, so that a ring (two neighbours) or a torus
// (four) reads every input exactly once and writes the output once, the
// accumulator staying in registers; more neighbours take further loops over the
// block, whose accumulator is still in the L1 cache. Measured on this project's
// build machine (float32, 2^25 elements, two neighbours): one separate loop per
// neighbour ran at 60% of the fused loop's speed.
constexpr int64_t kBlock = 4096;
// 16-bit formats: the widened inputs of a group and the accumulator together
// fill about the L1 cache: (kGroup + 2) * kHalfBlock floats.
constexpr int64_t kHalfBlock = 2048;
constexpr int kGroup = 4;

// Where a loop's running sum starts: the self term read from `self`, the self term
// read from the accumulator (in place), or the accumulator as it is.
enum class Start { kSelf, kInPlace, kAcc };

// acc[i] = start + w[0] * in0[i] + ... + w[M-1] * in{M-1}[i], left to right, every
// product rounded before it is added. No input aliases `acc`: in place, the self
// term is read from `acc` itself (Start::kInPlace).
template <typename T, int M, Start S>
void Pass(T* __restrict acc, const T* __restrict self, T self_weight, const T* __restrict in0,
          const T* __restrict in1, const T* __restrict in2, const T* __restrict in3, const T* w,
          int64_t n) {
  const T w0 = M > 0 ? w[0] : T(0), w1 = M > 1 ? w[1] : T(0);
  const T w2 = M > 2 ? w[2] : T(0), w3 = M > 3 ? w[3] : T(0);
  for (int64_t i = 0; i < n; ++i) {
    T x;
    if constexpr (S == Start::kSelf) {
      x = self_weight * self[i];
    } else if constexpr (S == Start::kInPlace) {
      x = self_weight * acc[i];
    } else {
      x = acc[i];
    }
    if constexpr (M > 0) x = x + w0 * in0[i];
    if constexpr (M > 1) x = x + w1 * in1[i];
    if constexpr (M > 2) x = x + w2 * in2[i];
    if constexpr (M > 3) x = x + w3 * in3[i];
    acc[i] = x;
  }
}

// Pass with the group's size `m` (0 to kGroup) chosen at run time.
template <typename T, Start S>
void GroupPass(int m, T* acc, const T* self, T self_weight, const T* const* in, const T* w,
               int64_t n) {
  switch (m) {
    case 0:
      return Pass<T, 0, S>(acc, self, self_weight, nullptr, nullptr, nullptr, nullptr, w, n);
    case 1:
      return Pass<T, 1, S>(acc, self, self_weight, in[0], nullptr, nullptr, nullptr, w, n);
    case 2:
      return Pass<T, 2, S>(acc, self, self_weight, in[0], in[1], nullptr, nullptr, w, n);
    case 3:
      return Pass<T, 3, S>(acc, self, self_weight, in[0], in[1], in[2], nullptr, w, n);
    default:
      return Pass<T, 4, S>(acc, self, self_weight, in[0], in[1], in[2], in[3], w, n);
  }
}

// One block: the self term and the first group, then the other groups.
template <typename T>
void MixBlock(T* acc, const T* self, T self_weight, const T* const* in, const T* w, int num,
              int64_t n) {
  const int first = std::min(num, kGroup);
  if (self == acc) {
    GroupPass<T, Start::kInPlace>(first, acc, self, self_weight, in, w, n);
  } else {
    GroupPass<T, Start::kSelf>(first, acc, self, self_weight, in, w, n);
  }
  for (int k = first; k < num; k += kGroup) {
    GroupPass<T, Start::kAcc>(std::min(num - k, kGroup), acc, nullptr, self_weight, in + k, w + k,
                              n);
  }
}

// float32 and float64: the output is the accumulator. A neighbour never aliases it
// (checked), so only the self term can be in place.
template <typename T>
void MixWide(const MixArgs& args) {
  const int num = static_cast<int>(args.neighbours.size());
  std::vector<T> weights(args.weights.begin(), args.weights.end());  // rounded once
  std::vector<const T*> in(static_cast<size_t>(num));
  T* out = static_cast<T*>(args.out);
  const T* self = static_cast<const T*>(args.self);
  for (int64_t offset = 0; offset < args.count; offset += kBlock) {
    const int64_t n = std::min(kBlock, args.count - offset);
    for (int k = 0; k < num; ++k) in[k] = static_cast<const T*>(args.neighbours[k]) + offset;
    MixBlock(out + offset, self + offset, static_cast<T>(args.self_weight), in.data(),
             weights.data(), num, n);
  }
}

// float16 and bfloat16: a block of the self tensor and of each group of
// neighbours is widened into float, accumulated there, and rounded to the 16-bit
// format once per element at the end.
void MixSixteenBit(const MixArgs& args, const HalfCodec& codec) {
  alignas(64) float acc[kHalfBlock];
  alignas(64) float wide_self[kHalfBlock];
  alignas(64) float wide[kGroup][kHalfBlock];
  const float* group[kGroup] = {wide[0], wide[1], wide[2], wide[3]};
  const int num = static_cast<int>(args.neighbours.size());
  std::vector<float> weights(args.weights.begin(), args.weights.end());  // rounded once
  const float self_weight = static_cast<float>(args.self_weight);
  auto neighbour = [&args](int k) { return static_cast<const uint16_t*>(args.neighbours[k]); };
  for (int64_t offset = 0; offset < args.count; offset += kHalfBlock) {
    const int64_t n = std::min(kHalfBlock, args.count - offset);
    codec.to_float(static_cast<const uint16_t*>(args.self) + offset, wide_self, n);
    int k = 0;
    do {
      const int m = std::min(num - k, kGroup);
      for (int j = 0; j < m; ++j) codec.to_float(neighbour(k + j) + offset, wide[j], n);
      if (k == 0) {
        GroupPass<float, Start::kSelf>(m, acc, wide_self, self_weight, group, weights.data(), n);
      } else {
        GroupPass<float, Start::kAcc>(m, acc, nullptr, self_weight, group, weights.data() + k, n);
      }
      k += m;
    } while (k < num);
    codec.from_float(acc, static_cast<uint16_t*>(args.out) + offset, n);
  }
}

Status CheckArgs(const MixArgs& args) {
  if (!IsMixDataType(args.dtype)) {
    return InvalidArgument(std::string("mix: cannot mix ") + DataTypeName(args.dtype) +
                           " tensors (float16, bfloat16, float32 and float64 only)");
  }
  if (args.weights.size() != args.neighbours.size()) {
    return InvalidArgument("mix: " + std::to_string(args.weights.size()) + " weights for " +
                           std::to_string(args.neighbours.size()) + " neighbours");
  }
  if (args.count < 0) return InvalidArgument("mix: negative element count");
  if (args.count == 0) return Status::OK();
  if (args.out == nullptr) return InvalidArgument("mix: null output pointer");
  if (args.self == nullptr) return InvalidArgument("mix: null pointer to this rank's tensor");
  for (size_t k = 0; k < args.neighbours.size(); ++k) {
    if (args.neighbours[k] == nullptr) {
      return InvalidArgument("mix: null pointer to neighbour " + std::to_string(k) + "'s tensor");
    }
    if (args.neighbours[k] == args.out) {
      return InvalidArgument("mix: the output is neighbour " + std::to_string(k) +
                             "'s tensor (only this rank's own may be mixed in place)");
    }
  }
  return Status::OK();
}

}  // namespace

bool IsMixDataType(DataType dtype) {
  return dtype == DataType::kFloat16 || dtype == DataType::kBFloat16 ||
         dtype == DataType::kFloat32 || dtype == DataType::kFloat64;
}

Status Mix(const MixArgs& args) {
  BRAID_RETURN_IF_ERROR(CheckArgs(args));
  if (args.count == 0) return Status::OK();
  switch (args.dtype) {
    case DataType::kFloat32:
      MixWide<float>(args);
      break;
    case DataType::kFloat64:
      MixWide<double>(args);
      break;
    case DataType::kFloat16:
      MixSixteenBit(args, Float16Codec());
      break;
    case DataType::kBFloat16:
      MixSixteenBit(args, BFloat16Codec());
      break;
    default:
      break;  // refused by CheckArgs
  }
  return Status::OK();
}

}  // namespace cpu
}  // namespace braid
