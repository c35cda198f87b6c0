// GPU kernels of the error memory (memory.h): the fused error-feedback pass and
// the sent step, the gather of random-k, the copies, and the registration of the
// whole compress table (with topk_select.cu's selection kernels) when the CUDA
// plugin library that holds these files is loaded (see device_kernels.h).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "ops/compress/compress_kernels_cuda.h"
#include "ops/compress/cuda_support.cuh"

namespace braid::compress::cuda {
namespace {

// Loads and stores of one value dtype in its arithmetic type (float for the
// 16-bit types, rounded to nearest even on the store, as common/half.h does on
// the host).
struct HalfIo {
  using Raw = unsigned short;
  using Math = float;
  __device__ static float Load(Raw v) { return __half2float(__ushort_as_half(v)); }
  __device__ static Raw Store(float v) { return __half_as_ushort(__float2half_rn(v)); }
};
struct BFloat16Io {
  using Raw = unsigned short;
  using Math = float;
  __device__ static float Load(Raw v) { return __bfloat162float(__ushort_as_bfloat16(v)); }
  __device__ static Raw Store(float v) { return __bfloat16_as_ushort(__float2bfloat16_rn(v)); }
};
struct FloatIo {
  using Raw = float;
  using Math = float;
  __device__ static float Load(float v) { return v; }
  __device__ static float Store(float v) { return v; }
};
struct DoubleIo {
  using Raw = double;
  using Math = double;
  __device__ static double Load(double v) { return v; }
  __device__ static double Store(double v) { return v; }
};

// Explicitly rounded operations: no contraction into a fused multiply-add, so the
// pass rounds exactly as the host loop does.
__device__ __forceinline__ float Mul(float a, float b) {
  return __fmul_rn(a, b);
}
__device__ __forceinline__ float Add(float a, float b) {
  return __fadd_rn(a, b);
}
__device__ __forceinline__ double Mul(double a, double b) {
  return __dmul_rn(a, b);
}
__device__ __forceinline__ double Add(double a, double b) {
  return __dadd_rn(a, b);
}

// e = (e + a*g) + b*d, one read of e, g (and d) and one write of e per element.
template <typename Io, bool kHasD>
__global__ void FeedbackKernel(typename Io::Raw* __restrict__ e,
                               const typename Io::Raw* __restrict__ g,
                               const typename Io::Raw* __restrict__ d, int64_t n,
                               typename Io::Math a, typename Io::Math b) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{blockDim.x} * gridDim.x) {
    auto v = Add(Io::Load(e[i]), Mul(a, Io::Load(g[i])));
    if (kHasD) v = Add(v, Mul(b, Io::Load(d[i])));
    e[i] = Io::Store(v);
  }
}

template <typename Raw, typename Index>
__global__ void ExtractKernel(Raw* __restrict__ e, int64_t n, const Index* __restrict__ idx,
                              int64_t count, Raw* __restrict__ values) {
  for (int64_t j = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; j < count;
       j += int64_t{blockDim.x} * gridDim.x) {
    const int64_t i = idx[j];
    const bool inside = i >= 0 && i < n;
    if (values != nullptr) values[j] = inside ? e[i] : Raw{};
    if (inside) e[i] = Raw{};
  }
}

template <typename Raw, typename Index>
__global__ void GatherKernel(const Raw* __restrict__ x, const Index* __restrict__ idx,
                             int64_t count, Raw* __restrict__ values) {
  for (int64_t j = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; j < count;
       j += int64_t{blockDim.x} * gridDim.x) {
    values[j] = x[idx[j]];
  }
}

template <typename Io>
void LaunchFeedback(void* e, const void* g, const void* d, int64_t n, double a, double b,
                    cudaStream_t st) {
  using Raw = typename Io::Raw;
  using Math = typename Io::Math;
  auto* ev = static_cast<Raw*>(e);
  auto* gv = static_cast<const Raw*>(g);
  auto* dv = static_cast<const Raw*>(d);
  if (d != nullptr) {
    FeedbackKernel<Io, true><<<BlocksFor(n), kThreads, 0, st>>>(ev, gv, dv, n, static_cast<Math>(a),
                                                                static_cast<Math>(b));
  } else {
    FeedbackKernel<Io, false><<<BlocksFor(n), kThreads, 0, st>>>(
        ev, gv, dv, n, static_cast<Math>(a), static_cast<Math>(b));
  }
}

Status ErrorFeedback(int device, void* e, const void* g, const void* d, int64_t n, DataType dtype,
                     double a, double b, void* stream) {
  if (n == 0) return Status::OK();
  return OnDevice(device, [&] {
    auto st = static_cast<cudaStream_t>(stream);
    switch (dtype) {
      case DataType::kFloat16:
        LaunchFeedback<HalfIo>(e, g, d, n, a, b, st);
        break;
      case DataType::kBFloat16:
        LaunchFeedback<BFloat16Io>(e, g, d, n, a, b, st);
        break;
      case DataType::kFloat32:
        LaunchFeedback<FloatIo>(e, g, d, n, a, b, st);
        break;
      default:
        LaunchFeedback<DoubleIo>(e, g, d, n, a, b, st);
        break;
    }
    return Check(cudaGetLastError(), "error feedback launch");
  });
}

// Runs `launch(Raw{}, Index{})` with the raw value type of `size` bytes and the
// index type.
template <typename F>
void WithRawAndIndex(size_t size, DataType index_dtype, F launch) {
  const bool wide = index_dtype == DataType::kInt64;
  if (size == 2) {
    wide ? launch(uint16_t{}, int64_t{}) : launch(uint16_t{}, int32_t{});
  } else if (size == 4) {
    wide ? launch(uint32_t{}, int64_t{}) : launch(uint32_t{}, int32_t{});
  } else {
    wide ? launch(uint64_t{}, int64_t{}) : launch(uint64_t{}, int32_t{});
  }
}

Status ExtractSent(int device, void* e, int64_t n, DataType dtype, const void* indices,
                   DataType index_dtype, int64_t count, void* values, void* stream) {
  if (count == 0) return Status::OK();
  return OnDevice(device, [&] {
    auto st = static_cast<cudaStream_t>(stream);
    WithRawAndIndex(DataTypeSize(dtype), index_dtype, [&](auto raw, auto index) {
      using Raw = decltype(raw);
      using Index = decltype(index);
      ExtractKernel<Raw, Index><<<BlocksFor(count), kThreads, 0, st>>>(
          static_cast<Raw*>(e), n, static_cast<const Index*>(indices), count,
          static_cast<Raw*>(values));
    });
    return Check(cudaGetLastError(), "extract sent launch");
  });
}

Status Gather(int device, const DeviceValues& x, const void* indices, DataType index_dtype,
              int64_t count, void* values, void* stream) {
  if (count == 0) return Status::OK();
  return OnDevice(device, [&] {
    auto st = static_cast<cudaStream_t>(stream);
    WithRawAndIndex(DataTypeSize(x.dtype), index_dtype, [&](auto raw, auto index) {
      using Raw = decltype(raw);
      using Index = decltype(index);
      GatherKernel<Raw, Index><<<BlocksFor(count), kThreads, 0, st>>>(
          static_cast<const Raw*>(x.data), static_cast<const Index*>(indices), count,
          static_cast<Raw*>(values));
    });
    return Check(cudaGetLastError(), "gather launch");
  });
}

Status CopyFromHost(int device, void* dst, const void* src, int64_t bytes, void* stream) {
  return CopyAndWait(device, dst, src, bytes, stream);
}

Status CopyToHost(int device, void* dst, const void* src, int64_t bytes, void* stream) {
  return CopyAndWait(device, dst, src, bytes, stream);
}

CompressDeviceKernels MakeTable() {
  CompressDeviceKernels k;
  k.topk = &TopK;
  k.sample_keys = &SampleKeys;
  k.count_at_least = &CountAtLeast;
  k.select_at_least = &SelectAtLeast;
  k.gather = &Gather;
  k.copy_from_host = &CopyFromHost;
  k.copy_to_host = &CopyToHost;
  k.error_feedback = &ErrorFeedback;
  k.extract_sent = &ExtractSent;
  return k;
}

// Loading the library registers the kernels (as the device data plane does).
[[maybe_unused]] const bool kRegistered = [] {
  RegisterCompressDeviceKernels(CudaCompressKernels());
  return true;
}();

}  // namespace

const CompressDeviceKernels* CudaCompressKernels() {
  static const CompressDeviceKernels table = MakeTable();
  return &table;
}

}  // namespace braid::compress::cuda
