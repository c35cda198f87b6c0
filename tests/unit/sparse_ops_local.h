// A one-rank stand-in for the engine, for the sparse ops' single-process suites
// (tests/unit/test_sparse_ops.cc, tests/gpu/test_sparse_ops_gpu.cc): a sparse
// allreduce (average over one rank) scatters the pairs into the zeroed dense
// output; a dense allreduce (average over one rank) leaves its buffer as it is.
// `download` / `upload` move bytes between the op's memory and the host (memcpy for
// host buffers).
#pragma once

#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#include "core/handle.h"
#include "core/request.h"
#include "ops/compress/sparse_step.h"

namespace braid::compress::testing {

using CopyFn = std::function<void(void* dst, const void* src, size_t bytes)>;

template <typename T, typename Index>
void ScatterPairs(const Index* idx, const T* values, int64_t k, T* dense, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dense[i] = T(0);
  for (int64_t j = 0; j < k; ++j) dense[idx[j]] += values[j];
}

inline EnqueueFn LocalEngine(CopyFn download, CopyFn upload, int* sparse_calls = nullptr) {
  return [=](Request r, std::shared_ptr<Handle>* handle) {
    *handle = std::make_shared<Handle>();
    if (r.meta.collective == Collective::kSparseAllreduce) {
      if (sparse_calls != nullptr) ++*sparse_calls;
      const int64_t k = r.meta.pairs, n = r.meta.shape[0];
      const size_t vsize = DataTypeSize(r.meta.dtype), isize = DataTypeSize(r.meta.index_dtype);
      std::vector<char> idx(k * isize + 8), vals(k * vsize + 8), dense(n * vsize + 8);
      download(idx.data(), r.indices, k * isize);
      download(vals.data(), r.input, k * vsize);
      const bool wide = r.meta.index_dtype == DataType::kInt64;
      if (r.meta.dtype == DataType::kFloat64) {
        wide ? ScatterPairs(reinterpret_cast<int64_t*>(idx.data()),
                            reinterpret_cast<double*>(vals.data()), k,
                            reinterpret_cast<double*>(dense.data()), n)
             : ScatterPairs(reinterpret_cast<int32_t*>(idx.data()),
                            reinterpret_cast<double*>(vals.data()), k,
                            reinterpret_cast<double*>(dense.data()), n);
      } else {
        wide ? ScatterPairs(reinterpret_cast<int64_t*>(idx.data()),
                            reinterpret_cast<float*>(vals.data()), k,
                            reinterpret_cast<float*>(dense.data()), n)
             : ScatterPairs(reinterpret_cast<int32_t*>(idx.data()),
                            reinterpret_cast<float*>(vals.data()), k,
                            reinterpret_cast<float*>(dense.data()), n);
      }
      upload(r.output, dense.data(), n * vsize);
    }
    (*handle)->Complete(Status::OK());
    return Status::OK();
  };
}

inline EnqueueFn HostEngine(int* sparse_calls = nullptr) {
  CopyFn copy = [](void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); };
  return LocalEngine(copy, copy, sparse_calls);
}

}  // namespace braid::compress::testing
