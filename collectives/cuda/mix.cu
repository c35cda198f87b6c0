#include <cstdint>
#include <cstring>
#include <string>

#include "collectives/cuda/kernel_launch.cuh"
#include "collectives/cuda/mix.h"
#include "collectives/cuda/scale_element.cuh"

namespace braid {
namespace cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535LL * 16;
constexpr int kVectorBytes = 16;

// What one launch reads: passed by value as a kernel parameter (about 1 KiB), so
// that a pass needs no device memory of its own and no copy before it.
template <typename Acc>
struct MixParams {
  void* out;
  const void* self;
  const void* neighbours[kMaxMixNeighbours];
  Acc weights[kMaxMixNeighbours];  // rounded once to the accumulator's type
  Acc self_weight;
  int num_neighbours;
  int64_t count;
};

// The element types: what is stored, what accumulates, and the arithmetic, each
// operation rounded to nearest on its own (the intrinsics forbid contraction).
struct Float32Element {
  using Storage = float;
  using Acc = float;
  static __device__ __forceinline__ float Widen(float x) { return x; }
  static __device__ __forceinline__ float Narrow(float x) { return x; }
  static __device__ __forceinline__ float Mul(float a, float b) { return __fmul_rn(a, b); }
  static __device__ __forceinline__ float Add(float a, float b) { return __fadd_rn(a, b); }
};

struct Float64Element {
  using Storage = double;
  using Acc = double;
  static __device__ __forceinline__ double Widen(double x) { return x; }
  static __device__ __forceinline__ double Narrow(double x) { return x; }
  static __device__ __forceinline__ double Mul(double a, double b) { return __dmul_rn(a, b); }
  static __device__ __forceinline__ double Add(double a, double b) { return __dadd_rn(a, b); }
};

// float16 / bfloat16 through float32, with the host's exact widening and its
// round-to-nearest-even narrowing (scale_element.cuh).
template <class Format>
struct SixteenBitElement {
  using Storage = uint16_t;
  using Acc = float;
  static __device__ __forceinline__ float Widen(uint16_t x) { return Format::ToFloat(x); }
  static __device__ __forceinline__ uint16_t Narrow(float x) { return Format::FromFloat(x); }
  static __device__ __forceinline__ float Mul(float a, float b) { return __fmul_rn(a, b); }
  static __device__ __forceinline__ float Add(float a, float b) { return __fadd_rn(a, b); }
};

// N consecutive elements: one 16-byte access when N fills it, plain ones otherwise.
// Neighbours go through the read-only cache; the self tensor may be the output.
template <typename S, int N>
__device__ __forceinline__ void Load(const S* p, bool read_only, S (&v)[N]) {
  if constexpr (sizeof(S) * N == kVectorBytes) {
    const uint4* q = reinterpret_cast<const uint4*>(p);
    const uint4 u = read_only ? __ldg(q) : *q;
    memcpy(v, &u, sizeof u);
  } else {
    for (int i = 0; i < N; ++i) v[i] = p[i];
  }
}

template <typename S, int N>
__device__ __forceinline__ void Store(S* p, const S (&v)[N]) {
  if constexpr (sizeof(S) * N == kVectorBytes) {
    uint4 u;
    memcpy(&u, v, sizeof u);
    *reinterpret_cast<uint4*>(p) = u;
  } else {
    for (int i = 0; i < N; ++i) p[i] = v[i];
  }
}

// Elements [e, e + N): the self term, then the neighbours in order, then one
// narrowing per element.
template <class E, int N>
__device__ __forceinline__ void MixElements(const MixParams<typename E::Acc>& p, int64_t e) {
  using S = typename E::Storage;
  using Acc = typename E::Acc;
  S x[N];
  Acc acc[N];
  Load<S, N>(static_cast<const S*>(p.self) + e, false, x);
  for (int i = 0; i < N; ++i) acc[i] = E::Mul(p.self_weight, E::Widen(x[i]));
  for (int k = 0; k < p.num_neighbours; ++k) {
    Load<S, N>(static_cast<const S*>(p.neighbours[k]) + e, true, x);
    const Acc w = p.weights[k];
    for (int i = 0; i < N; ++i) acc[i] = E::Add(acc[i], E::Mul(w, E::Widen(x[i])));
  }
  for (int i = 0; i < N; ++i) x[i] = E::Narrow(acc[i]);
  Store<S, N>(static_cast<S*>(p.out) + e, x);
}

// Grid-stride over groups of N elements, then the last count % N one by one.
// __grid_constant__: the neighbour table is indexed at run time and read where
// it is, not copied per thread.
template <class E, int N>
__global__ void MixKernel(const __grid_constant__ MixParams<typename E::Acc> p) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  const int64_t thread = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t groups = p.count / N;
  for (int64_t g = thread; g < groups; g += stride) MixElements<E, N>(p, g * N);
  if constexpr (N > 1) {
    for (int64_t e = groups * N + thread; e < p.count; e += stride) MixElements<E, 1>(p, e);
  }
}

bool Aligned(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % kVectorBytes == 0;
}

template <class E>
Status Launch(const MixArgs& args, cudaStream_t stream) {
  using Acc = typename E::Acc;
  constexpr int kWidth = kVectorBytes / static_cast<int>(sizeof(typename E::Storage));
  MixParams<Acc> p = {};
  p.out = args.out;
  p.self = args.self;
  p.self_weight = static_cast<Acc>(args.self_weight);
  p.num_neighbours = static_cast<int>(args.neighbours.size());
  p.count = args.count;
  bool aligned = Aligned(args.out) && Aligned(args.self);
  for (int k = 0; k < p.num_neighbours; ++k) {
    p.neighbours[k] = args.neighbours[k];
    p.weights[k] = static_cast<Acc>(args.weights[k]);
    aligned = aligned && Aligned(args.neighbours[k]);
  }
  if (aligned) {
    const int64_t work = args.count / kWidth + args.count % kWidth;
    MixKernel<E, kWidth><<<GridFor(work, kThreads, kMaxBlocks), kThreads, 0, stream>>>(p);
  } else {
    MixKernel<E, 1><<<GridFor(args.count, kThreads, kMaxBlocks), kThreads, 0, stream>>>(p);
  }
  return CudaStatus(cudaGetLastError(), "mix", "kernel launch");
}

// cpu::Mix's checks (collectives/cpu/mix.cc), and the launch's own limit.
Status CheckArgs(const MixArgs& args) {
  if (!cpu::IsMixDataType(args.dtype)) {
    return InvalidArgument(std::string("device mix: cannot mix ") + DataTypeName(args.dtype) +
                           " tensors (float16, bfloat16, float32 and float64 only)");
  }
  if (args.weights.size() != args.neighbours.size()) {
    return InvalidArgument("device mix: " + std::to_string(args.weights.size()) + " weights for " +
                           std::to_string(args.neighbours.size()) + " neighbours");
  }
  if (args.neighbours.size() > static_cast<size_t>(kMaxMixNeighbours)) {
    return InvalidArgument("device mix: " + std::to_string(args.neighbours.size()) +
                           " neighbours; the CUDA mixing pass takes at most " +
                           std::to_string(kMaxMixNeighbours));
  }
  if (args.count < 0) return InvalidArgument("device mix: negative element count");
  if (args.count == 0) return Status::OK();
  if (args.out == nullptr) return InvalidArgument("device mix: null output pointer");
  if (args.self == nullptr) {
    return InvalidArgument("device mix: null pointer to this rank's tensor");
  }
  for (size_t k = 0; k < args.neighbours.size(); ++k) {
    if (args.neighbours[k] == nullptr) {
      return InvalidArgument("device mix: null pointer to neighbour " + std::to_string(k) +
                             "'s tensor");
    }
    if (args.neighbours[k] == args.out) {
      return InvalidArgument("device mix: the output is neighbour " + std::to_string(k) +
                             "'s tensor (only this rank's own may be mixed in place)");
    }
  }
  return Status::OK();
}

}  // namespace

Status Mix(const MixArgs& args, cudaStream_t stream) {
  BRAID_RETURN_IF_ERROR(CheckArgs(args));
  if (args.count == 0) return Status::OK();
  switch (args.dtype) {
    case DataType::kFloat32:
      return Launch<Float32Element>(args, stream);
    case DataType::kFloat64:
      return Launch<Float64Element>(args, stream);
    case DataType::kFloat16:
      return Launch<SixteenBitElement<detail::HalfFormat>>(args, stream);
    case DataType::kBFloat16:
      return Launch<SixteenBitElement<detail::BFloat16Format>>(args, stream);
    default:
      return Internal("device mix: unreachable dtype");  // refused by CheckArgs
  }
}

}  // namespace cuda
}  // namespace braid
