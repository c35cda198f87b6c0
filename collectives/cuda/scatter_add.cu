#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>

#include "collectives/cuda/scatter_add.h"

namespace braid {
namespace cuda {
namespace {

constexpr int kThreads = 256;

int BlocksFor(int64_t elements) {
  const int64_t blocks = (elements + kThreads - 1) / kThreads;
  return static_cast<int>(std::min<int64_t>(std::max<int64_t>(blocks, 1), 65535LL * 8));
}

template <typename T>
__device__ void AddScaled(T* out, T in, float factor) {
  atomicAdd(out, static_cast<T>(static_cast<float>(in) * factor));
}
__device__ void AddScaled(double* out, double in, double factor) {
  atomicAdd(out, in * factor);
}
__device__ void AddScaled(float* out, float in, float factor) {
  atomicAdd(out, in * factor);
}

// One thread per value element: pair p = e / row, column j = e % row.
template <typename T, typename Index, typename Factor>
__global__ void ScatterAddKernel(T* dense, int64_t length, int64_t row, const Index* indices,
                                 const T* values, int64_t elements, Factor factor) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < elements;
       e += stride) {
    const int64_t p = e / row;
    const int64_t i = static_cast<int64_t>(indices[p]);
    if (i < 0 || i >= length) continue;
    AddScaled(dense + i * row + (e - p * row), values[e], factor);
  }
}

template <typename Index>
__global__ void OutOfRangeKernel(const Index* indices, int64_t count, int64_t length,
                                 unsigned long long* first) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; p < count;
       p += stride) {
    const int64_t i = static_cast<int64_t>(indices[p]);
    if (i < 0 || i >= length) atomicMin(first, static_cast<unsigned long long>(p));
  }
}

template <typename T, typename Index, typename Factor>
void Launch(void* dense, int64_t length, int64_t row, const void* indices, const void* values,
            int64_t count, Factor factor, cudaStream_t stream) {
  const int64_t elements = count * row;
  ScatterAddKernel<<<BlocksFor(elements), kThreads, 0, stream>>>(
      static_cast<T*>(dense), length, row, static_cast<const Index*>(indices),
      static_cast<const T*>(values), elements, factor);
}

template <typename Index>
Status ScatterAddWith(void* dense, int64_t length, int64_t row, DataType dtype, const void* indices,
                      const void* values, int64_t count, double factor, cudaStream_t stream) {
  const float f = static_cast<float>(factor);
  switch (dtype) {
    case DataType::kFloat32:
      Launch<float, Index>(dense, length, row, indices, values, count, f, stream);
      break;
    case DataType::kFloat64:
      Launch<double, Index>(dense, length, row, indices, values, count, factor, stream);
      break;
    case DataType::kFloat16:
      Launch<__half, Index>(dense, length, row, indices, values, count, f, stream);
      break;
    case DataType::kBFloat16:
      Launch<__nv_bfloat16, Index>(dense, length, row, indices, values, count, f, stream);
      break;
    default:
      return InvalidArgument(std::string("sparse scatter-add: unsupported dtype ") +
                             DataTypeName(dtype));
  }
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    return Status(StatusCode::kBackendError,
                  std::string("scatter-add kernel launch failed: ") + cudaGetErrorString(err));
  }
  return Status::OK();
}

}  // namespace

Status ScatterAdd(void* dense, int64_t length, int64_t row, DataType dtype, const void* indices,
                  DataType index_dtype, const void* values, int64_t count, double factor,
                  cudaStream_t stream) {
  if (count <= 0 || row <= 0) return Status::OK();
  if (index_dtype == DataType::kInt32) {
    return ScatterAddWith<int32_t>(dense, length, row, dtype, indices, values, count, factor,
                                   stream);
  }
  return ScatterAddWith<int64_t>(dense, length, row, dtype, indices, values, count, factor, stream);
}

Status FindIndexOutOfRange(const void* indices, DataType index_dtype, int64_t count, int64_t length,
                           unsigned long long* first, cudaStream_t stream) {
  if (count <= 0) return Status::OK();
  if (index_dtype == DataType::kInt32) {
    OutOfRangeKernel<<<BlocksFor(count), kThreads, 0, stream>>>(
        static_cast<const int32_t*>(indices), count, length, first);
  } else {
    OutOfRangeKernel<<<BlocksFor(count), kThreads, 0, stream>>>(
        static_cast<const int64_t*>(indices), count, length, first);
  }
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    return Status(StatusCode::kBackendError,
                  std::string("index check kernel launch failed: ") + cudaGetErrorString(err));
  }
  return Status::OK();
}

}  // namespace cuda
}  // namespace braid
