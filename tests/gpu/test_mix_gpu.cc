// The mixing pass's CUDA kernel (collectives/cuda/mix.h) against cpu::Mix, bit
// for bit: every mix dtype, counts around the kernel's 16-byte groups and large
// ones, 0 to 5 neighbours and the most one launch takes, in place and out of
// place, pointers aligned (vector path) and off by one element (scalar path);
// CudaDeviceOps::Mix on its own stream after a producer stream; and what the
// device refuses. Inputs are finite (NaN payloads are allowed to differ).
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "collectives/cpu/mix.h"
#include "collectives/cuda/cuda_device_ops.h"
#include "collectives/cuda/mix.h"
#include "common/half.h"

namespace braid {
namespace {

constexpr DataType kMixDtypes[] = {DataType::kFloat16, DataType::kBFloat16, DataType::kFloat32,
                                   DataType::kFloat64};

// `count` random finite elements of `dtype` as bytes: moderate values, subnormals
// now and then, and (float16) values whose sums round to infinity.
std::vector<char> RandomTensor(DataType dtype, int64_t count, uint64_t seed) {
  const size_t elem = DataTypeSize(dtype);
  std::vector<char> out(static_cast<size_t>(count) * elem);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> value(-8.0, 8.0);
  for (int64_t i = 0; i < count; ++i) {
    double v = value(rng);
    if (i % 97 == 5) v *= dtype == DataType::kFloat16 ? 1e-6 : 1e-40;
    if (i % 101 == 7 && dtype == DataType::kFloat16) v *= 8000.0;
    char* at = out.data() + i * elem;
    if (dtype == DataType::kFloat64) {
      std::memcpy(at, &v, 8);
    } else if (dtype == DataType::kFloat32) {
      const float f = static_cast<float>(v);
      std::memcpy(at, &f, 4);
    } else {
      const float f = static_cast<float>(v);
      const uint16_t h = dtype == DataType::kFloat16 ? FloatToHalf(f) : FloatToBFloat16(f);
      std::memcpy(at, &h, 2);
    }
  }
  return out;
}

// Device memory with room for `offset` bytes before the tensor.
class DeviceTensor {
 public:
  DeviceTensor(const std::vector<char>& host, size_t offset) : bytes_(host.size()) {
    EXPECT_EQ(cudaMalloc(&base_, bytes_ + offset + 16), cudaSuccess);
    data_ = static_cast<char*>(base_) + offset;
    EXPECT_EQ(cudaMemcpy(data_, host.data(), bytes_, cudaMemcpyHostToDevice), cudaSuccess);
  }
  ~DeviceTensor() { cudaFree(base_); }
  DeviceTensor(const DeviceTensor&) = delete;
  DeviceTensor& operator=(const DeviceTensor&) = delete;
  void* data() const { return data_; }
  std::vector<char> Read() const {
    std::vector<char> out(bytes_);
    EXPECT_EQ(cudaMemcpy(out.data(), data_, bytes_, cudaMemcpyDeviceToHost), cudaSuccess);
    return out;
  }

 private:
  size_t bytes_;
  void* base_ = nullptr;
  char* data_ = nullptr;
};

struct Case {
  DataType dtype;
  int64_t count;
  int neighbours;
  bool in_place;
  size_t offset;  // bytes; one element misaligns every pointer
};

std::string Describe(const Case& c) {
  return std::string(DataTypeName(c.dtype)) + " count " + std::to_string(c.count) + " neighbours " +
         std::to_string(c.neighbours) + (c.in_place ? " in place" : "") +
         (c.offset ? " misaligned" : "");
}

// Runs the case on the host and through `device_mix` (which must finish its work
// before returning) and returns the number of elements whose bits differ.
template <typename DeviceMix>
int64_t CompareWithHost(const Case& c, DeviceMix device_mix) {
  const size_t elem = DataTypeSize(c.dtype);
  MixArgs host_args, device_args;
  host_args.self_weight = device_args.self_weight = 0.3 + 0.1 * c.neighbours;
  host_args.count = device_args.count = c.count;
  host_args.dtype = device_args.dtype = c.dtype;
  const std::vector<char> self = RandomTensor(c.dtype, c.count, 7);
  std::vector<std::vector<char>> inputs;
  std::vector<std::unique_ptr<DeviceTensor>> device_inputs;
  for (int k = 0; k < c.neighbours; ++k) {
    inputs.push_back(RandomTensor(c.dtype, c.count, 100 + k));
    device_inputs.push_back(std::make_unique<DeviceTensor>(inputs.back(), c.offset));
    host_args.neighbours.push_back(inputs.back().data());
    device_args.neighbours.push_back(device_inputs.back()->data());
    const double w = k == 1 ? -0.7 : 1.0 / (k + 3);
    host_args.weights.push_back(w);
    device_args.weights.push_back(w);
  }
  std::vector<char> host_out(self.size());
  host_args.out = host_out.data();
  host_args.self = self.data();
  EXPECT_TRUE(cpu::Mix(host_args).ok());
  DeviceTensor device_self(self, c.offset), device_out(self, c.offset);
  device_args.out = device_out.data();
  device_args.self = c.in_place ? device_out.data() : device_self.data();
  const Status st = device_mix(device_args);
  EXPECT_TRUE(st.ok()) << Describe(c) << ": " << st.ToString();
  const std::vector<char> got = device_out.Read();
  int64_t wrong = 0;
  for (int64_t e = 0; e < c.count; ++e) {
    if (std::memcmp(got.data() + e * elem, host_out.data() + e * elem, elem) == 0) continue;
    if (wrong++ == 0) ADD_FAILURE() << Describe(c) << ": element " << e << " differs";
  }
  return wrong;
}

Status KernelOnDefaultStream(const MixArgs& args) {
  BRAID_RETURN_IF_ERROR(cuda::Mix(args, nullptr));
  const cudaError_t rc = cudaDeviceSynchronize();
  if (rc != cudaSuccess) return BackendError(cudaGetErrorString(rc));
  return Status::OK();
}

TEST(MixKernelTest, MatchesTheHostBitForBit) {
  for (DataType dtype : kMixDtypes) {
    for (int64_t count : {int64_t{0}, int64_t{1}, int64_t{7}, int64_t{8}, int64_t{9}, int64_t{4099},
                          int64_t{299993}}) {
      for (int n : {0, 1, 2, 3, 5}) {
        for (bool in_place : {false, true}) {
          for (size_t offset : {size_t{0}, DataTypeSize(dtype)}) {
            ASSERT_EQ(
                CompareWithHost(Case{dtype, count, n, in_place, offset}, KernelOnDefaultStream), 0);
          }
        }
      }
    }
  }
}

TEST(MixKernelTest, LargeTensorsAndTheMostNeighbours) {
  for (DataType dtype : kMixDtypes) {
    ASSERT_EQ(
        CompareWithHost(Case{dtype, (int64_t{1} << 22) + 3, 2, true, 0}, KernelOnDefaultStream), 0);
    ASSERT_EQ(CompareWithHost(Case{dtype, 4099, cuda::kMaxMixNeighbours, false, 0},
                              KernelOnDefaultStream),
              0);
  }
}

// Through the device plane's operations: queued on its stream, after the work
// on the stream named in the arguments.
TEST(MixKernelTest, DeviceOpsQueueOnTheirStream) {
  int device = 0;
  ASSERT_EQ(cudaGetDevice(&device), cudaSuccess);
  std::unique_ptr<DeviceOps> ops;
  ASSERT_TRUE(cuda::CudaDeviceOps::Create(device, &ops).ok());
  cudaStream_t producer = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&producer, cudaStreamNonBlocking), cudaSuccess);
  auto through_ops = [&](MixArgs args) -> Status {
    args.stream = producer;
    BRAID_RETURN_IF_ERROR(ops->Mix(args));
    return ops->Synchronize();
  };
  for (DataType dtype : kMixDtypes) {
    ASSERT_EQ(CompareWithHost(Case{dtype, 100003, 3, false, 0}, through_ops), 0);
  }
  cudaStreamDestroy(producer);
}

TEST(MixKernelTest, RefusesWhatItCannotMix) {
  std::vector<char> zeros(64 * 4);
  DeviceTensor a(zeros, 0), b(zeros, 0);
  MixArgs args;
  args.out = a.data();
  args.self = a.data();
  args.count = 64;
  auto refused = [&](const MixArgs& bad, const std::string& word) {
    const Status st = cuda::Mix(bad, nullptr);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << word;
    EXPECT_NE(st.message().find(word), std::string::npos) << st.message();
  };
  MixArgs bad = args;
  bad.neighbours.assign(cuda::kMaxMixNeighbours + 1, b.data());
  bad.weights.assign(cuda::kMaxMixNeighbours + 1, 0.01);
  refused(bad, "at most 64");
  bad = args;
  bad.dtype = DataType::kInt32;
  refused(bad, "int32");
  bad = args;
  bad.neighbours = {b.data()};
  refused(bad, "0 weights for 1 neighbours");
  bad.weights = {0.5};
  bad.out = b.data();
  refused(bad, "output is neighbour 0");
  EXPECT_TRUE(cuda::Mix(args, nullptr).ok());
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

}  // namespace
}  // namespace braid
