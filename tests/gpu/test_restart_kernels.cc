// The restart ops' GPU kernels (ops/restart/slowmo_update.cu) against the host
// loop, and the restart ops end to end on device buffers through the registered
// table, with a fake single-process engine (np 1). Needs slowmo_update.cu in the
// CUDA plugin library that the GPU suites link.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "ops/restart/device_kernels.h"
#include "ops/restart/slowmo.h"
#include "ops/restart/slowmo_update_cuda.h"
#include "ops/restart/step_check.h"

namespace braid::restart {
namespace {

// Device memory holding a copy of `host`; copied back by Read().
template <typename T>
class DeviceVector {
 public:
  explicit DeviceVector(const std::vector<T>& host) : n_(host.size()) {
    EXPECT_EQ(cudaMalloc(&data_, (n_ ? n_ : 1) * sizeof(T)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(data_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  ~DeviceVector() { cudaFree(data_); }
  T* data() { return static_cast<T*>(data_); }
  std::vector<T> Read() const {
    std::vector<T> out(n_);
    EXPECT_EQ(cudaMemcpy(out.data(), data_, n_ * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return out;
  }
  void Write(const std::vector<T>& host) {
    ASSERT_EQ(host.size(), n_);
    ASSERT_EQ(cudaMemcpy(data_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  BufferView View() {
    BufferView v;
    v.data = data_;
    v.count = static_cast<int64_t>(n_);
    v.dtype = sizeof(T) == 8 ? DataType::kFloat64 : DataType::kFloat32;
    v.device = 0;
    return v;
  }

 private:
  void* data_ = nullptr;
  size_t n_;
};

template <typename T>
void CompareSlowMoKernel(int64_t n, bool nesterov) {
  std::vector<T> x(n), sum(n), x_old(n), s(n);
  for (int64_t i = 0; i < n; ++i) {
    sum[i] = static_cast<T>(0.5 * (i % 11) - 2);
    x_old[i] = static_cast<T>(0.25 * (i % 7));
    s[i] = static_cast<T>(0.125 * (i % 3));
  }
  DeviceVector<T> dx(x), dsum(sum), dx_old(x_old), ds(s);
  SlowMoCoefficients c{0.25, 1.0 / 0.05, 0.6, 0.7 * 0.05, nesterov};
  const DataType dtype = dx.View().dtype;
  SlowMoSegment host{x.data(), sum.data(), x_old.data(), s.data(), n, dtype};
  SlowMoSegment dev{dx.data(), dsum.data(), dx_old.data(), ds.data(), n, dtype};
  ASSERT_TRUE(SlowMoUpdateHost(host, c).ok());
  ASSERT_TRUE(cuda::CudaRestartKernels()->slowmo_update(0, dev, c, nullptr).ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  // Same arithmetic in the same type: equal up to contraction into fused multiply-adds.
  const double tol = sizeof(T) == 8 ? 1e-12 : 1e-4;
  auto gx = dx.Read(), gx_old = dx_old.Read(), gs = ds.Read();
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_NEAR(gx[i], x[i], tol) << i;
    ASSERT_NEAR(gx_old[i], x_old[i], tol) << i;
    ASSERT_NEAR(gs[i], s[i], tol * 20) << i;
  }
}

TEST(RestartKernels, SlowMoPassMatchesTheHostLoop) {
  for (int64_t n : {1, 1000, (1 << 20) + 3}) {
    for (bool nesterov : {false, true}) {
      CompareSlowMoKernel<double>(n, nesterov);
      CompareSlowMoKernel<float>(n, nesterov);
    }
  }
}

TEST(RestartKernels, RegisteredWhenTheLibraryIsLoaded) {
  EXPECT_EQ(RestartDeviceKernelsOrNull(), cuda::CudaRestartKernels());
}

// One process stands for `ranks` equal ranks: the sum is the buffer times `ranks`.
EnqueueFn EqualRanks(int ranks) {
  return [ranks](Request r, std::shared_ptr<Handle>* h) {
    std::vector<double> host(static_cast<size_t>(r.meta.NumElements()));
    cudaMemcpy(host.data(), r.output, host.size() * 8, cudaMemcpyDeviceToHost);
    for (double& v : host) v *= ranks;
    cudaMemcpy(r.output, host.data(), host.size() * 8, cudaMemcpyHostToDevice);
    *h = std::make_shared<Handle>();
    (*h)->Complete(Status::OK());
    return Status::OK();
  };
}

TEST(RestartKernels, SlowMoOpOnDeviceBuffers) {
  std::unique_ptr<SlowMo> op;
  ASSERT_TRUE(SlowMo::Create(EqualRanks(4), {"gpu.slowmo", {1, 0}, 1.0, 0.5, false}, &op).ok());
  DeviceVector<double> x(std::vector<double>(100, 1.0)), x_old(std::vector<double>(100, 0.0)),
      s(std::vector<double>(100, 0.0)), m(std::vector<double>(7, 3.0));
  ASSERT_TRUE(op->SetBuffers({x.View()}, {m.View()}).ok());
  ASSERT_TRUE(op->SetSlowBuffers(x_old.View(), s.View()).ok());
  ASSERT_TRUE(op->InitSlowParams().ok());
  EXPECT_EQ(x_old.Read(), std::vector<double>(100, 1.0));
  // All ranks equal: xbar = x = 1 = x_old, so s stays 0 and x stays 1.
  bool restarted = false;
  ASSERT_TRUE(op->Step(0.1, &restarted).ok());
  EXPECT_TRUE(restarted);
  EXPECT_EQ(x.Read(), std::vector<double>(100, 1.0));
  EXPECT_EQ(s.Read(), std::vector<double>(100, 0.0));
  EXPECT_EQ(m.Read(), std::vector<double>(7, 3.0));  // averaged: (4 * 3) / 4
}

// Two blocks of BMUF-NBM (eta 0.5, zeta 1, lr 0.1) on device buffers, all ranks
// equal, against BMUF's equations worked by hand: W = 1, Delta = 0 at the start.
// Block 1 ends at 0.5: G = 0.5 - 1, Delta = -0.5, W = 0.5, next start
// W + eta * Delta = 0.25. Block 2 ends at 0: G = 0 - 0.25, Delta = -0.25 - 0.25,
// W = 0, next start -0.25.
TEST(RestartKernels, BmufNesterovOpOnDeviceBuffers) {
  std::unique_ptr<SlowMo> op;
  ASSERT_TRUE(SlowMo::Create(EqualRanks(3), {"gpu.bmuf", {1, 0}, 1.0, 0.5, true}, &op).ok());
  DeviceVector<double> x(std::vector<double>(10, 1.0)), x_old(std::vector<double>(10, 0.0)),
      s(std::vector<double>(10, 0.0));
  ASSERT_TRUE(op->SetBuffers({x.View()}, {}).ok());
  ASSERT_TRUE(op->SetSlowBuffers(x_old.View(), s.View()).ok());
  ASSERT_TRUE(op->InitSlowParams().ok());
  const double block_end[2] = {0.5, 0.0}, next_start[2] = {0.25, -0.25};
  for (int block = 0; block < 2; ++block) {
    x.Write(std::vector<double>(10, block_end[block]));
    ASSERT_TRUE(op->RestartNow(0.1).ok());
    for (double v : x.Read()) EXPECT_NEAR(v, next_start[block], 1e-12) << "block " << block;
    // s = -Delta / (zeta * lr): 5 after both blocks.
    for (double v : s.Read()) EXPECT_NEAR(v, 5.0, 1e-12) << "block " << block;
  }
}

}  // namespace
}  // namespace braid::restart
