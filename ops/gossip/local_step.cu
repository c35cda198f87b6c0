// GPU kernels of the decentralized SGD op: the local momentum step (the same
// arithmetic as LocalStepHost in local_step.cc, rounded the same way: every
// product and sum through the round-to-nearest intrinsics, which the compiler does
// not contract into FMAs) and the squared distance of the consensus distance.
// Registered with the op when the library that holds this file is loaded (see
// device_kernels.h).
#include <cuda_runtime.h>

#include <string>

#include "collectives/cuda/kernel_launch.cuh"
#include "ops/gossip/local_step_cuda.h"

namespace braid::gossip::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535;
// Blocks of the distance's first pass: its partial sums are added by one block.
constexpr int64_t kDistanceBlocks = 1024;

int BlocksFor(int64_t n, int64_t max_blocks = kMaxBlocks) {
  return braid::cuda::GridFor(n, kThreads, max_blocks);
}

Status Check(cudaError_t err, const char* what) {
  return braid::cuda::CudaStatus(err, "decentralized SGD kernels", what);
}

template <typename F>
Status OnDevice(int device, F f) {
  return braid::cuda::OnDevice(device, "decentralized SGD kernels", f);
}

__device__ __forceinline__ float Mul(float a, float b) {
  return __fmul_rn(a, b);
}
__device__ __forceinline__ double Mul(double a, double b) {
  return __dmul_rn(a, b);
}
__device__ __forceinline__ float Add(float a, float b) {
  return __fadd_rn(a, b);
}
__device__ __forceinline__ double Add(double a, double b) {
  return __dadd_rn(a, b);
}
__device__ __forceinline__ float Sub(float a, float b) {
  return __fsub_rn(a, b);
}
__device__ __forceinline__ double Sub(double a, double b) {
  return __dsub_rn(a, b);
}

template <typename T, bool kNesterov, bool kMomentum>
__global__ void LocalStepKernel(T* __restrict__ x, const T* __restrict__ g, T* __restrict__ u,
                                int64_t n, T lr, T beta, T wd) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{blockDim.x} * gridDim.x) {
    const T gi = Add(g[i], Mul(wd, x[i]));
    // Local momentum step; without a momentum buffer u~ = g~ (beta = 0, D-PSGD).
    const T ui = kMomentum ? Add(Mul(beta, u[i]), gi) : gi;
    x[i] = Sub(x[i], Mul(lr, kNesterov ? Add(Mul(beta, ui), gi) : ui));
    if (kMomentum) u[i] = ui;
  }
}

// Block sums of (x - sum * inv_ranks)^2 in double, one per block into `partial`.
template <typename T>
__global__ void DistanceKernel(const T* __restrict__ x, const T* __restrict__ sum, int64_t n,
                               double inv_ranks, double* __restrict__ partial) {
  __shared__ double acc[kThreads];
  double local = 0.0;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{blockDim.x} * gridDim.x) {
    const double d = static_cast<double>(x[i]) - static_cast<double>(sum[i]) * inv_ranks;
    local += d * d;
  }
  acc[threadIdx.x] = local;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s /= 2) {
    if (threadIdx.x < s) acc[threadIdx.x] += acc[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[blockIdx.x] = acc[0];
}

// partial[0] = the sum of partial[0 .. blocks), by one block in a fixed order.
__global__ void SumPartialsKernel(double* partial, int blocks) {
  __shared__ double acc[kThreads];
  double local = 0.0;
  for (int i = threadIdx.x; i < blocks; i += blockDim.x) local += partial[i];
  acc[threadIdx.x] = local;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s /= 2) {
    if (threadIdx.x < s) acc[threadIdx.x] += acc[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[0] = acc[0];
}

template <typename T>
void LaunchLocalStep(const LocalStepSegment& s, const LocalStepCoefficients& c,
                     cudaStream_t stream) {
  auto* x = static_cast<T*>(s.x);
  auto* g = static_cast<const T*>(s.g);
  auto* u = static_cast<T*>(s.u);
  const T lr = static_cast<T>(c.lr), beta = static_cast<T>(c.beta);
  const T wd = static_cast<T>(c.weight_decay);
  const int blocks = BlocksFor(s.count);
  if (u == nullptr && c.nesterov) {
    LocalStepKernel<T, true, false>
        <<<blocks, kThreads, 0, stream>>>(x, g, u, s.count, lr, beta, wd);
  } else if (u == nullptr) {
    LocalStepKernel<T, false, false>
        <<<blocks, kThreads, 0, stream>>>(x, g, u, s.count, lr, beta, wd);
  } else if (c.nesterov) {
    LocalStepKernel<T, true, true><<<blocks, kThreads, 0, stream>>>(x, g, u, s.count, lr, beta, wd);
  } else {
    LocalStepKernel<T, false, true>
        <<<blocks, kThreads, 0, stream>>>(x, g, u, s.count, lr, beta, wd);
  }
}

Status LocalStep(int device, const LocalStepSegment& s, const LocalStepCoefficients& c,
                 void* stream) {
  if (s.count == 0) return Status::OK();
  return OnDevice(device, [&] {
    auto st = static_cast<cudaStream_t>(stream);
    if (s.dtype == DataType::kFloat64) {
      LaunchLocalStep<double>(s, c, st);
    } else if (s.dtype == DataType::kFloat32) {
      LaunchLocalStep<float>(s, c, st);
    } else {
      return InvalidArgument(std::string("decentralized local step kernel: unsupported dtype ") +
                             DataTypeName(s.dtype));
    }
    return Check(cudaGetLastError(), "local step launch");
  });
}

// The two passes into a scratch buffer of the stream, then one copy to the host,
// which waits for it.
Status RunDistance(const void* x, const void* sum, int64_t count, DataType dtype, double inv_ranks,
                   double* out, cudaStream_t st) {
  const int blocks = BlocksFor(count, kDistanceBlocks);
  double* partial = nullptr;
  BRAID_RETURN_IF_ERROR(
      Check(cudaMallocAsync(reinterpret_cast<void**>(&partial), sizeof(double) * blocks, st),
            "cudaMallocAsync"));
  if (dtype == DataType::kFloat64) {
    DistanceKernel<double><<<blocks, kThreads, 0, st>>>(
        static_cast<const double*>(x), static_cast<const double*>(sum), count, inv_ranks, partial);
  } else {
    DistanceKernel<float><<<blocks, kThreads, 0, st>>>(
        static_cast<const float*>(x), static_cast<const float*>(sum), count, inv_ranks, partial);
  }
  SumPartialsKernel<<<1, kThreads, 0, st>>>(partial, blocks);
  Status launched = Check(cudaGetLastError(), "distance launch");
  Status copied =
      launched.ok()
          ? Check(cudaMemcpyAsync(out, partial, sizeof(double), cudaMemcpyDeviceToHost, st),
                  "cudaMemcpyAsync")
          : launched;
  cudaFreeAsync(partial, st);
  BRAID_RETURN_IF_ERROR(copied);
  return Check(cudaStreamSynchronize(st), "cudaStreamSynchronize");
}

Status SquaredDistance(int device, const void* x, const void* sum, int64_t count, DataType dtype,
                       double inv_ranks, double* out, void* stream) {
  *out = 0.0;
  if (count == 0) return Status::OK();
  if (dtype != DataType::kFloat32 && dtype != DataType::kFloat64) {
    return InvalidArgument(std::string("consensus distance kernel: unsupported dtype ") +
                           DataTypeName(dtype));
  }
  return OnDevice(device, [&] {
    return RunDistance(x, sum, count, dtype, inv_ranks, out, static_cast<cudaStream_t>(stream));
  });
}

GossipDeviceKernels MakeTable() {
  GossipDeviceKernels k;
  k.local_step = &LocalStep;
  k.squared_distance = &SquaredDistance;
  return k;
}

// Loading the library registers the kernels (as the device data plane does).
[[maybe_unused]] const bool kRegistered = [] {
  RegisterGossipDeviceKernels(CudaGossipKernels());
  return true;
}();

}  // namespace

const GossipDeviceKernels* CudaGossipKernels() {
  static const GossipDeviceKernels table = MakeTable();
  return &table;
}

}  // namespace braid::gossip::cuda
