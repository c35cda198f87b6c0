// GPU kernels of the sparse ops' element-wise passes (sparse_passes.h): the same
// arithmetic as the host loops in sparse_passes.cc, with explicitly rounded
// operations (no fused multiply-add), so a GPU writes the same bits. Registered
// when the CUDA plugin library that holds this file is loaded.
#include <cuda_runtime.h>

#include <vector>

#include "ops/compress/cuda_support.cuh"
#include "ops/compress/sparse_passes.h"

namespace braid::compress::cuda {
namespace {

__device__ __forceinline__ float Mul(float a, float b) {
  return __fmul_rn(a, b);
}
__device__ __forceinline__ float Add(float a, float b) {
  return __fadd_rn(a, b);
}
__device__ __forceinline__ float Sub(float a, float b) {
  return __fsub_rn(a, b);
}
__device__ __forceinline__ double Mul(double a, double b) {
  return __dmul_rn(a, b);
}
__device__ __forceinline__ double Add(double a, double b) {
  return __dadd_rn(a, b);
}
__device__ __forceinline__ double Sub(double a, double b) {
  return __dsub_rn(a, b);
}

template <typename T>
struct FusedArgs {
  const T* w;
  const T* g;
  T* e;
  T* a;
  const T* l;
  T* out;
  int64_t n;
  T clip, wd, mu, ca, cg, cl;
  bool has_a, nesterov;
  DenseWrite dense;
};

template <typename T>
__global__ void FusedKernel(FusedArgs<T> p) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < p.n;
       i += int64_t{blockDim.x} * gridDim.x) {
    const T gp = Mul(p.clip, Add(p.g[i], Mul(p.wd, p.w[i])));
    if (p.dense == DenseWrite::kGradient) {
      p.out[i] = gp;
      continue;
    }
    T z = p.e[i];
    if (p.has_a) {
      const T ai = p.nesterov ? Mul(p.mu, Add(p.a[i], gp)) : Add(Mul(p.mu, p.a[i]), gp);
      p.a[i] = ai;
      if (p.ca != T(0)) z = Add(z, Mul(p.ca, ai));
    }
    if (p.cg != T(0)) z = Add(z, Mul(p.cg, gp));
    if (p.l != nullptr && p.cl != T(0)) z = Add(z, Mul(p.cl, p.l[i]));
    if (p.dense == DenseWrite::kZ) {
      p.out[i] = z;
      p.e[i] = T(0);
    } else {
      p.e[i] = z;
    }
  }
}

template <typename T>
__global__ void ApplyKernel(T* w, const T* src, T* keep, int64_t n, T scale, bool unit) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{blockDim.x} * gridDim.x) {
    const T s = src[i];
    w[i] = unit ? Sub(w[i], s) : Sub(w[i], Mul(scale, s));
    if (keep != nullptr && keep != src) keep[i] = s;
  }
}

template <typename T>
__global__ void DenseMomentumKernel(T* w, const T* avg, T* a, int64_t n, T mu, T lr,
                                    bool nesterov) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{blockDim.x} * gridDim.x) {
    const T ai = Add(Mul(mu, a[i]), avg[i]);
    a[i] = ai;
    w[i] = Sub(w[i], Mul(lr, nesterov ? Add(avg[i], Mul(mu, ai)) : ai));
  }
}

// One partial sum of (g + wd w)^2 per block, in double.
template <typename T>
__global__ void SquaredNormKernel(const T* w, const T* g, int64_t n, T wd, double* partial) {
  __shared__ double sums[kThreads];
  double acc = 0.0;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{blockDim.x} * gridDim.x) {
    const double v = static_cast<double>(Add(g[i], Mul(wd, w[i])));
    acc += v * v;
  }
  sums[threadIdx.x] = acc;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (static_cast<int>(threadIdx.x) < s) sums[threadIdx.x] += sums[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) partial[blockIdx.x] = sums[0];
}

template <typename Index>
__global__ void AddBaseKernel(Index* idx, int64_t n, int64_t base) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{blockDim.x} * gridDim.x) {
    idx[i] = static_cast<Index>(idx[i] + base);
  }
}

template <typename T>
void LaunchFused(const FusedSegment& s, const FusedCoefficients& c, cudaStream_t st) {
  FusedArgs<T> p;
  p.w = static_cast<const T*>(s.w);
  p.g = static_cast<const T*>(s.g);
  p.e = static_cast<T*>(s.memory);
  p.a = static_cast<T*>(s.momentum);
  p.l = static_cast<const T*>(s.last);
  p.out = static_cast<T*>(s.dense_out);
  p.n = s.count;
  p.clip = static_cast<T>(c.clip);
  p.wd = static_cast<T>(c.weight_decay);
  p.mu = static_cast<T>(c.mu);
  p.ca = static_cast<T>(c.ca);
  p.cg = static_cast<T>(c.cg);
  p.cl = static_cast<T>(c.cl);
  p.has_a = c.form != MomentumForm::kNone && s.momentum != nullptr;
  p.nesterov = c.form == MomentumForm::kDgcNesterov;
  p.dense = c.dense;
  FusedKernel<T><<<BlocksFor(s.count), kThreads, 0, st>>>(p);
}

Status FusedPass(int device, const FusedSegment& s, const FusedCoefficients& c, void* stream) {
  if (s.count == 0) return Status::OK();
  return OnDevice(device, [&] {
    auto st = static_cast<cudaStream_t>(stream);
    if (s.dtype == DataType::kFloat64) {
      LaunchFused<double>(s, c, st);
    } else {
      LaunchFused<float>(s, c, st);
    }
    return Check(cudaGetLastError(), "sparse fused pass launch");
  });
}

template <typename T>
void LaunchApply(const ApplySegment& s, double scale, cudaStream_t st) {
  ApplyKernel<T><<<BlocksFor(s.count), kThreads, 0, st>>>(
      static_cast<T*>(s.w), static_cast<const T*>(s.src), static_cast<T*>(s.keep), s.count,
      static_cast<T>(scale), static_cast<T>(scale) == T(1));
}

Status Apply(int device, const ApplySegment& s, double scale, void* stream) {
  if (s.count == 0) return Status::OK();
  return OnDevice(device, [&] {
    auto st = static_cast<cudaStream_t>(stream);
    if (s.dtype == DataType::kFloat64) {
      LaunchApply<double>(s, scale, st);
    } else {
      LaunchApply<float>(s, scale, st);
    }
    return Check(cudaGetLastError(), "sparse apply launch");
  });
}

Status DenseMomentum(int device, const ApplySegment& s, double mu, double lr, bool nesterov,
                     void* stream) {
  if (s.count == 0) return Status::OK();
  return OnDevice(device, [&] {
    auto st = static_cast<cudaStream_t>(stream);
    if (s.dtype == DataType::kFloat64) {
      DenseMomentumKernel<double><<<BlocksFor(s.count), kThreads, 0, st>>>(
          static_cast<double*>(s.w), static_cast<const double*>(s.src),
          static_cast<double*>(s.momentum), s.count, mu, lr, nesterov);
    } else {
      DenseMomentumKernel<float><<<BlocksFor(s.count), kThreads, 0, st>>>(
          static_cast<float*>(s.w), static_cast<const float*>(s.src),
          static_cast<float*>(s.momentum), s.count, static_cast<float>(mu), static_cast<float>(lr),
          nesterov);
    }
    return Check(cudaGetLastError(), "sparse dense momentum launch");
  });
}

Status SquaredNorm(int device, const void* w, const void* g, int64_t count, DataType dtype,
                   double weight_decay, double* out, void* stream) {
  *out = 0.0;
  if (count == 0) return Status::OK();
  return OnDevice(device, [&] {
    auto st = static_cast<cudaStream_t>(stream);
    const int blocks = BlocksFor(count);
    Scratch partial(st);
    BRAID_RETURN_IF_ERROR(partial.Allocate(sizeof(double) * blocks));
    if (dtype == DataType::kFloat64) {
      SquaredNormKernel<double><<<blocks, kThreads, 0, st>>>(static_cast<const double*>(w),
                                                             static_cast<const double*>(g), count,
                                                             weight_decay, partial.As<double>());
    } else {
      SquaredNormKernel<float><<<blocks, kThreads, 0, st>>>(
          static_cast<const float*>(w), static_cast<const float*>(g), count,
          static_cast<float>(weight_decay), partial.As<double>());
    }
    BRAID_RETURN_IF_ERROR(Check(cudaGetLastError(), "squared norm launch"));
    std::vector<double> host(static_cast<size_t>(blocks));
    BRAID_RETURN_IF_ERROR(
        Check(cudaMemcpyAsync(host.data(), partial.As<double>(), sizeof(double) * blocks,
                              cudaMemcpyDeviceToHost, st),
              "cudaMemcpyAsync"));
    BRAID_RETURN_IF_ERROR(Check(cudaStreamSynchronize(st), "cudaStreamSynchronize"));
    for (double v : host) *out += v;
    return Status::OK();
  });
}

Status AddBase(int device, void* indices, DataType index_dtype, int64_t count, int64_t base,
               void* stream) {
  if (count == 0 || base == 0) return Status::OK();
  return OnDevice(device, [&] {
    auto st = static_cast<cudaStream_t>(stream);
    if (index_dtype == DataType::kInt64) {
      AddBaseKernel<int64_t>
          <<<BlocksFor(count), kThreads, 0, st>>>(static_cast<int64_t*>(indices), count, base);
    } else {
      AddBaseKernel<int32_t>
          <<<BlocksFor(count), kThreads, 0, st>>>(static_cast<int32_t*>(indices), count, base);
    }
    return Check(cudaGetLastError(), "add base launch");
  });
}

Status Allocate(int device, int64_t bytes, void** memory) {
  return OnDevice(
      device, [&] { return Check(cudaMalloc(memory, static_cast<size_t>(bytes)), "cudaMalloc"); });
}

void Release(int device, void* memory) {
  (void)OnDevice(device, [&] { return Check(cudaFree(memory), "cudaFree"); });
}

Status Zero(int device, void* memory, int64_t bytes, void* stream) {
  return OnDevice(device, [&] {
    return Check(
        cudaMemsetAsync(memory, 0, static_cast<size_t>(bytes), static_cast<cudaStream_t>(stream)),
        "cudaMemsetAsync");
  });
}

// Any direction (unified addressing); the host waits, so a host source may go.
Status Copy(int device, void* dst, const void* src, int64_t bytes, void* stream) {
  return CopyAndWait(device, dst, src, bytes, stream);
}

SparseStepDeviceKernels MakeTable() {
  SparseStepDeviceKernels k;
  k.allocate = &Allocate;
  k.release = &Release;
  k.zero = &Zero;
  k.copy = &Copy;
  k.fused_pass = &FusedPass;
  k.apply = &Apply;
  k.dense_momentum = &DenseMomentum;
  k.squared_norm = &SquaredNorm;
  k.add_base = &AddBase;
  return k;
}

const SparseStepDeviceKernels* CudaSparseStepKernels() {
  static const SparseStepDeviceKernels table = MakeTable();
  return &table;
}

// Loading the library registers the kernels (as the compress kernels do).
[[maybe_unused]] const bool kRegistered = [] {
  RegisterSparseStepDeviceKernels(CudaSparseStepKernels());
  return true;
}();

}  // namespace
}  // namespace braid::compress::cuda
