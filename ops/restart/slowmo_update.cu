// GPU kernels of the restart ops: the SlowMo outer update as one fused pass (the
// same arithmetic as SlowMoUpdateHost in slowmo_update.cc) and the scaled copies
// that pack and unpack a restart's buffer. Registered with the restart ops when
// the library that holds this file is loaded (see device_kernels.h).
#include <cuda_runtime.h>

#include <string>

#include "collectives/cuda/kernel_launch.cuh"
#include "ops/restart/slowmo_update_cuda.h"

namespace braid::restart::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535;

int BlocksFor(int64_t n) {
  return braid::cuda::GridFor(n, kThreads, kMaxBlocks);
}

Status Check(cudaError_t err, const char* what) {
  return braid::cuda::CudaStatus(err, "restart kernels", what);
}

template <typename F>
Status OnDevice(int device, F f) {
  return braid::cuda::OnDevice(device, "restart kernels", f);
}

template <typename T, bool kNesterov>
__global__ void SlowMoKernel(T* __restrict__ x, const T* __restrict__ sum, T* __restrict__ x_old,
                             T* __restrict__ s, int64_t n, T inv_ranks, T inv_lr, T beta,
                             T alpha_lr) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{blockDim.x} * gridDim.x) {
    // d: the block's slow gradient, measured from where the block started (x_old).
    const T d = (x_old[i] - sum[i] * inv_ranks) * inv_lr;
    const T si = beta * s[i] + d;
    const T xo = x_old[i] - alpha_lr * (kNesterov ? beta * si + d : si);
    s[i] = si;
    x_old[i] = xo;
    x[i] = xo;
  }
}

template <typename T>
__global__ void ScaleCopyKernel(T* __restrict__ dst, const T* __restrict__ src, int64_t n,
                                T factor) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{blockDim.x} * gridDim.x) {
    dst[i] = src[i] * factor;
  }
}

template <typename T>
void LaunchSlowMo(const SlowMoSegment& g, const SlowMoCoefficients& c, cudaStream_t stream) {
  auto* x = static_cast<T*>(g.x);
  auto* sum = static_cast<const T*>(g.sum);
  auto* x_old = static_cast<T*>(g.x_old);
  auto* s = static_cast<T*>(g.s);
  const T inv_ranks = static_cast<T>(c.inv_ranks), inv_lr = static_cast<T>(c.inv_lr);
  const T beta = static_cast<T>(c.beta), alpha_lr = static_cast<T>(c.alpha_lr);
  if (c.nesterov) {
    SlowMoKernel<T, true><<<BlocksFor(g.count), kThreads, 0, stream>>>(
        x, sum, x_old, s, g.count, inv_ranks, inv_lr, beta, alpha_lr);
  } else {
    SlowMoKernel<T, false><<<BlocksFor(g.count), kThreads, 0, stream>>>(
        x, sum, x_old, s, g.count, inv_ranks, inv_lr, beta, alpha_lr);
  }
}

Status Allocate(int device, int64_t bytes, void** memory) {
  return OnDevice(device, [&] {
    return Check(cudaMalloc(memory, static_cast<size_t>(bytes > 0 ? bytes : 1)), "cudaMalloc");
  });
}

void Release(int device, void* memory) {
  // The buffer may still be read by work queued on a stream: wait for the device.
  OnDevice(device, [&] {
    cudaDeviceSynchronize();
    cudaFree(memory);
    return Status::OK();
  });
}

Status ScaleCopy(int device, void* dst, const void* src, int64_t count, DataType dtype,
                 double factor, void* stream) {
  if (count == 0) return Status::OK();
  return OnDevice(device, [&] {
    auto st = static_cast<cudaStream_t>(stream);
    if (dtype == DataType::kFloat64) {
      ScaleCopyKernel<double><<<BlocksFor(count), kThreads, 0, st>>>(
          static_cast<double*>(dst), static_cast<const double*>(src), count, factor);
    } else if (dtype == DataType::kFloat32) {
      ScaleCopyKernel<float><<<BlocksFor(count), kThreads, 0, st>>>(
          static_cast<float*>(dst), static_cast<const float*>(src), count,
          static_cast<float>(factor));
    } else {
      return InvalidArgument(std::string("restart kernels: unsupported dtype ") +
                             DataTypeName(dtype));
    }
    return Check(cudaGetLastError(), "scale copy launch");
  });
}

Status CopySync(int device, void* dst, const void* src, int64_t bytes, cudaMemcpyKind kind,
                void* stream) {
  return OnDevice(device, [&] {
    auto st = static_cast<cudaStream_t>(stream);
    BRAID_RETURN_IF_ERROR(
        Check(cudaMemcpyAsync(dst, src, static_cast<size_t>(bytes), kind, st), "cudaMemcpyAsync"));
    return Check(cudaStreamSynchronize(st), "cudaStreamSynchronize");
  });
}

Status CopyToHost(int device, void* dst, const void* src, int64_t bytes, void* stream) {
  return CopySync(device, dst, src, bytes, cudaMemcpyDeviceToHost, stream);
}

Status CopyFromHost(int device, void* dst, const void* src, int64_t bytes, void* stream) {
  return CopySync(device, dst, src, bytes, cudaMemcpyHostToDevice, stream);
}

Status SlowMoUpdate(int device, const SlowMoSegment& g, const SlowMoCoefficients& c, void* stream) {
  if (g.count == 0) return Status::OK();
  return OnDevice(device, [&] {
    auto st = static_cast<cudaStream_t>(stream);
    if (g.dtype == DataType::kFloat64) {
      LaunchSlowMo<double>(g, c, st);
    } else if (g.dtype == DataType::kFloat32) {
      LaunchSlowMo<float>(g, c, st);
    } else {
      return InvalidArgument(std::string("SlowMo kernel: unsupported dtype ") +
                             DataTypeName(g.dtype));
    }
    return Check(cudaGetLastError(), "SlowMo kernel launch");
  });
}

RestartDeviceKernels MakeTable() {
  RestartDeviceKernels k;
  k.allocate = &Allocate;
  k.release = &Release;
  k.scale_copy = &ScaleCopy;
  k.copy_to_host = &CopyToHost;
  k.copy_from_host = &CopyFromHost;
  k.slowmo_update = &SlowMoUpdate;
  return k;
}

// Loading the library registers the kernels (as the device data plane does).
[[maybe_unused]] const bool kRegistered = [] {
  RegisterRestartDeviceKernels(CudaRestartKernels());
  return true;
}();

}  // namespace

const RestartDeviceKernels* CudaRestartKernels() {
  static const RestartDeviceKernels table = MakeTable();
  return &table;
}

}  // namespace braid::restart::cuda
