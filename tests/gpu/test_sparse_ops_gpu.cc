// The sparse ops (GMC, M-DSGD, DGC) on a GPU against the same ops on the host,
// over a one-rank stand-in for the engine (tests/unit/sparse_ops_local.h): after
// every step the parameters and the state must hold the same bits (the passes
// round alike and the selections agree), except with DGC's clipping, whose norm is
// summed in another order on the GPU (a relative 1e-12 / 1e-5 then).
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "ops/compress/sparse_methods.h"
#include "tests/unit/sparse_ops_local.h"

namespace braid::compress {
namespace {

using testing::CopyFn;

// One side (host or GPU): the tensors and the op.
struct Side {
  bool gpu = false;
  DataType dtype = DataType::kFloat32;
  std::vector<int64_t> sizes;
  std::vector<void*> w, g;
  std::vector<std::vector<char>> host_w, host_g;
  std::unique_ptr<SparseStep> op;

  size_t Size() const { return DataTypeSize(dtype); }
  ~Side() {
    if (!gpu) return;
    for (void* p : w) cudaFree(p);
    for (void* p : g) cudaFree(p);
  }
  void Put(void* dst, const std::vector<char>& src) {
    if (gpu) {
      ASSERT_EQ(cudaMemcpy(dst, src.data(), src.size(), cudaMemcpyHostToDevice), cudaSuccess);
    } else {
      std::memcpy(dst, src.data(), src.size());
    }
  }
  std::vector<char> Get(const void* src, size_t bytes) const {
    std::vector<char> out(bytes);
    if (gpu) {
      EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      EXPECT_EQ(cudaMemcpy(out.data(), src, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
    } else {
      std::memcpy(out.data(), src, bytes);
    }
    return out;
  }
};

std::vector<char> Values(DataType dtype, int64_t n, int salt) {
  std::vector<char> out(n * DataTypeSize(dtype));
  for (int64_t i = 0; i < n; ++i) {
    const double v = std::sin(0.37 * i + 0.71 * salt) * (1 + (i * 7 + salt) % 5);
    if (dtype == DataType::kFloat64) {
      std::memcpy(out.data() + 8 * i, &v, 8);
    } else {
      const auto f = static_cast<float>(v);
      std::memcpy(out.data() + 4 * i, &f, 4);
    }
  }
  return out;
}

void Build(Side* s, const SparseStepOptions& o, const std::vector<bool>& dense) {
  CopyFn down = [gpu = s->gpu](void* dst, const void* src, size_t bytes) {
    if (bytes == 0) return;
    if (!gpu) return (void)std::memcpy(dst, src, bytes);
    cudaDeviceSynchronize();
    cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost);
  };
  CopyFn up = [gpu = s->gpu](void* dst, const void* src, size_t bytes) {
    if (bytes == 0) return;
    if (!gpu) return (void)std::memcpy(dst, src, bytes);
    cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice);
  };
  ASSERT_TRUE(SparseStep::Create(testing::LocalEngine(down, up), o, &s->op).ok());
  std::vector<BufferView> pv, gv;
  for (size_t j = 0; j < s->sizes.size(); ++j) {
    const int64_t n = s->sizes[j];
    s->host_w.push_back(Values(s->dtype, n, int(j)));
    s->host_g.emplace_back(n * s->Size());
    void* w = nullptr;
    void* g = nullptr;
    if (s->gpu) {
      ASSERT_EQ(cudaMalloc(&w, n * s->Size() + 8), cudaSuccess);
      ASSERT_EQ(cudaMalloc(&g, n * s->Size() + 8), cudaSuccess);
    } else {
      w = s->host_w.back().data();
      g = s->host_g.back().data();
    }
    s->w.push_back(w);
    s->g.push_back(g);
    s->Put(w, s->host_w.back());
    const int device = s->gpu ? 0 : kCpuDevice;
    pv.push_back(BufferView{w, n, s->dtype, device, nullptr});
    gv.push_back(BufferView{g, n, s->dtype, device, nullptr});
  }
  const Status st = s->op->SetBuffers(pv, gv, dense);
  ASSERT_TRUE(st.ok()) << st.message();
}

::testing::AssertionResult SameBits(const std::vector<char>& a, const std::vector<char>& b,
                                    DataType dtype, double tol, const std::string& what) {
  const int64_t n = static_cast<int64_t>(a.size() / DataTypeSize(dtype));
  for (int64_t i = 0; i < n; ++i) {
    double x, y;
    if (dtype == DataType::kFloat64) {
      std::memcpy(&x, a.data() + 8 * i, 8);
      std::memcpy(&y, b.data() + 8 * i, 8);
    } else {
      float fx, fy;
      std::memcpy(&fx, a.data() + 4 * i, 4);
      std::memcpy(&fy, b.data() + 4 * i, 4);
      x = fx, y = fy;
    }
    const bool ok = tol == 0.0
                        ? std::memcmp(a.data() + i * DataTypeSize(dtype),
                                      b.data() + i * DataTypeSize(dtype), DataTypeSize(dtype)) == 0
                        : std::fabs(x - y) <= tol * (1.0 + std::fabs(x));
    if (!ok) {
      return ::testing::AssertionFailure() << what << "[" << i << "]: host " << x << ", GPU " << y;
    }
  }
  return ::testing::AssertionSuccess();
}

void Compare(SparseMethod method, SelectionMethod selection, SelectionScope scope, DataType dtype,
             bool nesterov, double clip) {
  SparseStepOptions o;
  o.name = "gpu_vs_host";
  o.method = method;
  o.density = 0.05;
  o.momentum = 0.9;
  o.nesterov = nesterov;
  o.weight_decay = 0.001;
  o.clip_norm = clip;
  o.selection = selection;
  o.scope = scope;
  o.sample_fraction = 0.2;
  o.seed = 3;
  const std::vector<int64_t> sizes = {1000, 7, 4099, 33};
  const std::vector<bool> dense = {false, true, false, false};
  Side host, gpu;
  host.dtype = gpu.dtype = dtype;
  host.sizes = gpu.sizes = sizes;
  gpu.gpu = true;
  Build(&host, o, dense);
  Build(&gpu, o, dense);
  host.op->set_world_size(1);
  gpu.op->set_world_size(1);
  const double tol = clip > 0 ? (dtype == DataType::kFloat64 ? 1e-12 : 1e-5) : 0.0;
  for (int t = 1; t <= 4; ++t) {
    for (size_t j = 0; j < sizes.size(); ++j) {
      const std::vector<char> g = Values(dtype, sizes[j], 100 * t + int(j));
      host.Put(host.g[j], g);
      gpu.Put(gpu.g[j], g);
    }
    const double lr = 0.1 / t, density = t == 1 ? 0.25 : 0.05;
    ASSERT_TRUE(host.op->Step(lr, density).ok());
    const Status st = gpu.op->Step(lr, density);
    ASSERT_TRUE(st.ok()) << st.message();
    const std::string at = " step " + std::to_string(t);
    EXPECT_EQ(host.op->last_stats().pairs, gpu.op->last_stats().pairs) << at;
    for (size_t j = 0; j < sizes.size(); ++j) {
      const size_t bytes = sizes[j] * host.Size();
      ASSERT_TRUE(SameBits(host.Get(host.w[j], bytes), gpu.Get(gpu.w[j], bytes), dtype, tol,
                           "w" + std::to_string(j) + at));
    }
    for (const std::string& name : host.op->StateNames()) {
      BufferView a, b;
      ASSERT_TRUE(host.op->State(name, &a).ok());
      ASSERT_TRUE(gpu.op->State(name, &b).ok());
      ASSERT_TRUE(
          SameBits(host.Get(a.data, a.bytes()), gpu.Get(b.data, b.bytes()), dtype, tol, name + at));
    }
  }
}

TEST(SparseOpsGpu, MatchesHost) {
  for (DataType dtype : {DataType::kFloat32, DataType::kFloat64}) {
    for (SelectionMethod sel :
         {SelectionMethod::kTopK, SelectionMethod::kThreshold, SelectionMethod::kRandomK}) {
      for (SelectionScope scope : {SelectionScope::kTensor, SelectionScope::kGlobal}) {
        SCOPED_TRACE(std::string(DataTypeName(dtype)) + " selection " + std::to_string(int(sel)) +
                     " scope " + std::to_string(int(scope)));
        Compare(SparseMethod::kGmc, sel, scope, dtype, false, 0.0);
        Compare(SparseMethod::kMdsgd, sel, scope, dtype, true, 0.0);
        Compare(SparseMethod::kDgc, sel, scope, dtype, false, 0.0);
        Compare(SparseMethod::kDgc, sel, scope, dtype, true, 5.0);
      }
    }
  }
}

TEST(SparseOpsGpu, KernelsAreRegistered) {
  EXPECT_NE(SparseStepDeviceKernelsOrNull(), nullptr);
}

}  // namespace
}  // namespace braid::compress
