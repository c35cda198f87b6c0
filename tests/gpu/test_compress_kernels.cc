// The compress ops' CUDA kernels (ops/compress/topk_select.cu, memory.cu) against
// the host kernels, through the public entry points on device buffers: the same
// indices, the same value bits, the same rounds. Needs the .cu files in the CUDA
// plugin library that the GPU suites link.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "common/half.h"
#include "ops/compress/compress_kernels_cuda.h"
#include "ops/compress/device_kernels.h"
#include "ops/compress/memory.h"
#include "ops/compress/selection.h"

namespace braid::compress {
namespace {

constexpr DataType kValueTypes[] = {DataType::kFloat16, DataType::kBFloat16, DataType::kFloat32,
                                    DataType::kFloat64};
constexpr DataType kIndexTypes[] = {DataType::kInt32, DataType::kInt64};

// A host buffer of raw bytes and its device copy.
struct Buffer {
  Buffer(DataType dtype, int64_t n) : dtype(dtype), n(n), host(n * DataTypeSize(dtype) + 8, 0) {
    EXPECT_EQ(cudaMalloc(&device, host.size()), cudaSuccess);
  }
  ~Buffer() { cudaFree(device); }
  void Upload() {
    ASSERT_EQ(cudaMemcpy(device, host.data(), host.size(), cudaMemcpyHostToDevice), cudaSuccess);
  }
  std::vector<char> Download() const {
    std::vector<char> out(host.size());
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(out.data(), device, out.size(), cudaMemcpyDeviceToHost), cudaSuccess);
    return out;
  }
  BufferView View(bool on_device) {
    BufferView v;
    v.data = on_device ? device : host.data();
    v.count = n;
    v.dtype = dtype;
    v.device = on_device ? 0 : kCpuDevice;
    return v;
  }
  void Set(int64_t i, double v) {
    char* p = host.data() + i * DataTypeSize(dtype);
    const auto f = static_cast<float>(v);
    uint16_t h = dtype == DataType::kFloat16 ? FloatToHalf(f) : FloatToBFloat16(f);
    if (dtype == DataType::kFloat64) {
      std::memcpy(p, &v, 8);
    } else if (dtype == DataType::kFloat32) {
      std::memcpy(p, &f, 4);
    } else {
      std::memcpy(p, &h, 2);
    }
  }
  // The first `count` elements' bytes, host copy and device copy.
  std::vector<char> HostPrefix(int64_t count) const {
    return std::vector<char>(host.begin(), host.begin() + count * DataTypeSize(dtype));
  }
  std::vector<char> DevicePrefix(int64_t count) const {
    std::vector<char> all = Download();
    all.resize(count * DataTypeSize(dtype));
    return all;
  }

  DataType dtype;
  int64_t n;
  std::vector<char> host;
  void* device = nullptr;
};

void Fill(Buffer* x, uint32_t seed, int pattern) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  const double inf = std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < x->n; ++i) {
    double v = normal(rng);
    if (pattern == 1) v = 2.5;                                        // all equal
    if (pattern == 2) v = static_cast<double>((i * 7919) % 9) - 4.0;  // ties
    if (pattern == 3 && i % 17 == 3) v = i % 2 ? inf : -inf;          // infs
    if (pattern == 3 && i % 23 == 5) v = std::numeric_limits<double>::quiet_NaN();
    x->Set(i, v);
  }
  x->Upload();
}

// Runs `select(x, indices, values)` on the host copy and on the device copy and
// expects the same `count` entries.
template <typename F>
void ExpectSameSelection(Buffer& x, int64_t k, DataType index, F select) {
  Buffer hi(index, k), hv(x.dtype, k), di(index, k), dv(x.dtype, k);
  int64_t host_count = -1, device_count = -1;
  Status st = select(x.View(false), hi.View(false), hv.View(false), &host_count);
  ASSERT_TRUE(st.ok()) << st.message();
  st = select(x.View(true), di.View(true), dv.View(true), &device_count);
  ASSERT_TRUE(st.ok()) << st.message();
  ASSERT_EQ(host_count, device_count);
  ASSERT_EQ(hi.HostPrefix(host_count), di.DevicePrefix(device_count));
  ASSERT_EQ(hv.HostPrefix(host_count), dv.DevicePrefix(device_count));
}

TEST(CompressKernels, RegisteredWhenTheLibraryIsLoaded) {
  EXPECT_EQ(CompressDeviceKernelsOrNull(), cuda::CudaCompressKernels());
}

TEST(CompressKernels, TopKMatchesTheHost) {
  for (DataType dtype : kValueTypes) {
    for (DataType index : kIndexTypes) {
      for (int64_t n : {1, 1000, 70001, (1 << 20) + 3}) {
        for (int pattern : {0, 1, 2, 3}) {
          Buffer x(dtype, n);
          Fill(&x, static_cast<uint32_t>(n), pattern);
          for (int64_t k : {int64_t{0}, int64_t{1}, n / 1000, n / 100, n / 2, n}) {
            SCOPED_TRACE(std::string(DataTypeName(dtype)) + " " + DataTypeName(index) +
                         " n=" + std::to_string(n) + " pattern " + std::to_string(pattern) +
                         " k=" + std::to_string(k));
            ExpectSameSelection(x, k, index, [k](auto xv, auto iv, auto vv, int64_t* count) {
              *count = k;
              return TopK(xv, k, iv, vv);
            });
          }
        }
      }
    }
  }
}

TEST(CompressKernels, ThresholdSelectionMatchesTheHost) {
  for (DataType dtype : kValueTypes) {
    for (int pattern : {0, 2, 3}) {
      const int64_t n = 300001;
      Buffer x(dtype, n);
      Fill(&x, 5, pattern);
      for (int64_t k : {int64_t{30}, int64_t{3000}, int64_t{30000}}) {
        for (int rounds : {1, 10}) {
          SCOPED_TRACE(std::string(DataTypeName(dtype)) + " pattern " + std::to_string(pattern) +
                       " k=" + std::to_string(k) + " rounds " + std::to_string(rounds));
          ThresholdOptions o;
          o.seed = 3;
          o.max_rounds = rounds;
          ThresholdResult on_host, on_device;
          ExpectSameSelection(x, k, DataType::kInt64, [&](auto xv, auto iv, auto vv, int64_t* c) {
            ThresholdResult* r = xv.device == kCpuDevice ? &on_host : &on_device;
            Status st = ThresholdTopK(xv, k, iv, vv, o, r);
            *c = r->selected;
            return st;
          });
          EXPECT_EQ(on_host.rounds, on_device.rounds);
          EXPECT_EQ(on_host.candidates, on_device.candidates);
        }
      }
    }
  }
}

TEST(CompressKernels, RandomKAndSegmentedMatchTheHost) {
  const std::vector<int64_t> offsets = {0, 10, 10, 5000, 200000};
  Buffer x(DataType::kFloat32, offsets.back());
  Fill(&x, 8, 0);
  std::vector<int64_t> ks;
  ASSERT_TRUE(KForDensity(offsets, 0.01, &ks).ok());
  int64_t total = 0;
  for (int64_t k : ks) total += k;
  ExpectSameSelection(x, 777, DataType::kInt32, [](auto xv, auto iv, auto vv, int64_t* c) {
    *c = 777;
    return RandomK(xv, 777, 12345, iv, vv);
  });
  ExpectSameSelection(x, total, DataType::kInt64, [&](auto xv, auto iv, auto vv, int64_t* c) {
    *c = total;
    return SegmentedTopK(xv, offsets, ks, iv, vv, nullptr);
  });
  std::vector<int64_t> host_counts, device_counts;
  ExpectSameSelection(x, 2000, DataType::kInt64, [&](auto xv, auto iv, auto vv, int64_t* c) {
    *c = 2000;
    auto* counts = xv.device == kCpuDevice ? &host_counts : &device_counts;
    return SegmentedTopKGlobal(xv, offsets, 2000, iv, vv, counts);
  });
  EXPECT_EQ(host_counts, device_counts);
}

TEST(CompressKernels, ErrorFeedbackAndSentStepMatchTheHost) {
  for (DataType dtype : kValueTypes) {
    for (bool with_d : {false, true}) {
      const int64_t n = (1 << 20) + 5;
      Buffer e(dtype, n), g(dtype, n), d(dtype, n);
      Fill(&e, 1, 0);
      Fill(&g, 2, 0);
      Fill(&d, 3, 0);
      BufferView none;
      ASSERT_TRUE(
          ErrorFeedback(e.View(false), g.View(false), with_d ? d.View(false) : none, 0.1, -0.7)
              .ok());
      ASSERT_TRUE(
          ErrorFeedback(e.View(true), g.View(true), with_d ? d.View(true) : none, 0.1, -0.7).ok());
      ASSERT_EQ(e.HostPrefix(n), e.DevicePrefix(n)) << DataTypeName(dtype);
      // The sent step after a top-k: the same values out, the same memory left.
      const int64_t k = 1000;
      Buffer idx(DataType::kInt64, k), hv(dtype, k), dv(dtype, k);
      ASSERT_TRUE(TopK(e.View(false), k, idx.View(false), BufferView{}).ok());
      idx.Upload();
      ASSERT_TRUE(ExtractSent(e.View(false), idx.View(false), hv.View(false)).ok());
      ASSERT_TRUE(ExtractSent(e.View(true), idx.View(true), dv.View(true)).ok());
      ASSERT_EQ(hv.HostPrefix(k), dv.DevicePrefix(k));
      ASSERT_EQ(e.HostPrefix(n), e.DevicePrefix(n));
    }
  }
}

}  // namespace
}  // namespace braid::compress
