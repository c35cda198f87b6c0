// The decentralized SGD op's GPU kernels (ops/gossip/local_step.cu) against the
// host loops: the local momentum step bit for bit (no fused multiply-adds on either
// side), the squared distance to 1e-12; and the op end to end on device buffers
// against the same op on host buffers, with a fake single-process engine that
// plays `ranks` equal ranks (np 1). Needs local_step.cu in the CUDA plugin library
// that the GPU suites link.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include "ops/gossip/decentralized.h"
#include "ops/gossip/device_kernels.h"
#include "ops/gossip/local_step_cuda.h"

namespace braid::gossip {
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
BufferView HostView(std::vector<T>& v) {
  BufferView b;
  b.data = v.data();
  b.count = static_cast<int64_t>(v.size());
  b.dtype = sizeof(T) == 8 ? DataType::kFloat64 : DataType::kFloat32;
  return b;
}

template <typename T>
void CompareLocalStep(int64_t n, bool nesterov, bool momentum) {
  std::vector<T> x(n), g(n), u(n);
  for (int64_t i = 0; i < n; ++i) {
    x[i] = static_cast<T>(std::sin(0.1 * i));
    g[i] = static_cast<T>(std::cos(0.3 * i) - 0.2);
    u[i] = static_cast<T>(0.01 * (i % 13));
  }
  DeviceVector<T> dx(x), dg(g), du(u);
  const LocalStepCoefficients c{0.037, momentum ? 0.9 : 0.0, 1e-3, nesterov};
  const DataType dtype = dx.View().dtype;
  LocalStepSegment host{x.data(), g.data(), momentum ? u.data() : nullptr, n, dtype};
  LocalStepSegment dev{dx.data(), dg.data(), momentum ? du.data() : nullptr, n, dtype};
  ASSERT_TRUE(LocalStepHost(host, c).ok());
  ASSERT_TRUE(cuda::CudaGossipKernels()->local_step(0, dev, c, nullptr).ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(dx.Read(), x) << "n " << n << " nesterov " << nesterov;
  EXPECT_EQ(du.Read(), u) << "n " << n << " momentum " << momentum;
}

TEST(LocalStepKernel, BitForBitTheHostLoop) {
  for (int64_t n : {1, 1000, (1 << 20) + 3}) {
    for (bool nesterov : {false, true}) {
      for (bool momentum : {false, true}) {
        CompareLocalStep<double>(n, nesterov, momentum);
        CompareLocalStep<float>(n, nesterov, momentum);
      }
    }
  }
}

TEST(LocalStepKernel, SquaredDistanceMatchesTheHost) {
  for (int64_t n : {1, 777, (1 << 21) + 5}) {
    std::vector<double> x(n), sum(n);
    for (int64_t i = 0; i < n; ++i) x[i] = std::sin(0.01 * i), sum[i] = 3 * std::cos(0.02 * i);
    DeviceVector<double> dx(x), dsum(sum);
    double host = -1, dev = -1;
    ASSERT_TRUE(
        SquaredDistanceHost(x.data(), sum.data(), n, DataType::kFloat64, 1.0 / 3, &host).ok());
    ASSERT_TRUE(cuda::CudaGossipKernels()
                    ->squared_distance(0, dx.data(), dsum.data(), n, DataType::kFloat64, 1.0 / 3,
                                       &dev, nullptr)
                    .ok());
    EXPECT_NEAR(dev, host, 1e-12 * host) << n;
  }
}

TEST(LocalStepKernel, RegisteredWhenTheLibraryIsLoaded) {
  EXPECT_EQ(GossipDeviceKernelsOrNull(), cuda::CudaGossipKernels());
}

// One process stands for `ranks` equal ranks: a mix adds the weighted copies of the
// buffer (in the buffer's type, in the same order for host and device memory), an
// allreduce multiplies it by `ranks`.
EnqueueFn EqualRanks(int ranks) {
  return [ranks](Request r, std::shared_ptr<Handle>* h) {
    const bool device = r.meta.device != kCpuDevice;
    std::vector<double> v(static_cast<size_t>(r.meta.NumElements()));
    if (device) cudaMemcpy(v.data(), r.output, v.size() * 8, cudaMemcpyDeviceToHost);
    if (!device)
      v.assign(static_cast<double*>(r.output), static_cast<double*>(r.output) + v.size());
    for (double& e : v) {
      if (r.meta.collective == Collective::kAllreduce) {
        e *= ranks;
        continue;
      }
      double acc = r.self_weight * e;
      for (double w : r.recv_weights) acc += w * e;
      e = acc;
    }
    if (device) cudaMemcpy(r.output, v.data(), v.size() * 8, cudaMemcpyHostToDevice);
    if (!device) std::copy(v.begin(), v.end(), static_cast<double*>(r.output));
    *h = std::make_shared<Handle>();
    (*h)->Complete(Status::OK());
    return Status::OK();
  };
}

TEST(LocalStepKernel, OpOnDeviceBuffersMatchesTheHost) {
  DecentralizedOptions o;
  o.name = "gpu.dsgd";
  o.rank = 0;
  o.size = 4;
  ASSERT_TRUE(Graph::Ring(4, &o.graph).ok());
  o.nesterov = true;
  o.weight_decay = 0.01;
  o.average_period = 3;
  std::unique_ptr<DecentralizedSGD> host_op, dev_op;
  ASSERT_TRUE(DecentralizedSGD::Create(EqualRanks(4), o, &host_op).ok());
  o.name = "gpu.dsgd.device";
  ASSERT_TRUE(DecentralizedSGD::Create(EqualRanks(4), o, &dev_op).ok());
  std::vector<double> x(300), g(300), u(300, 0.0);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.5 * i);
  DeviceVector<double> dx(x), dg(g), du(u);
  ASSERT_TRUE(host_op->SetBuffers({HostView(x)}, {HostView(g)}, {HostView(u)}).ok());
  ASSERT_TRUE(dev_op->SetBuffers({dx.View()}, {dg.View()}, {du.View()}).ok());
  for (int t = 0; t < 7; ++t) {
    for (size_t i = 0; i < g.size(); ++i) g[i] = x[i] - std::cos(0.1 * i + t);
    dg.Write(g);
    ASSERT_TRUE(host_op->Step(0.05).ok());
    ASSERT_TRUE(dev_op->Step(0.05).ok());
    ASSERT_EQ(dx.Read(), x) << "step " << t;
    ASSERT_EQ(du.Read(), u) << "step " << t;
  }
  double d_host = -1, d_dev = -1;
  ASSERT_TRUE(host_op->ConsensusDistance(&d_host).ok());
  ASSERT_TRUE(dev_op->ConsensusDistance(&d_dev).ok());
  EXPECT_NEAR(d_dev, d_host, 1e-15);
  ASSERT_TRUE(dev_op->Consensus().ok());
  EXPECT_EQ(dx.Read(), x);  // equal ranks: the average is x (times 4, divided by 4)
}

}  // namespace
}  // namespace braid::gossip
