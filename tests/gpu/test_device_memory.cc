// The CUDA primitives the GPU data plane stands on: owned device and pinned memory,
// the device guard, and the error model.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <numeric>
#include <vector>

#include "collectives/cuda/cuda_check.h"
#include "collectives/cuda/device_memory.h"

namespace braid::cuda {
namespace {

TEST(DeviceMemory, RoundTripThroughDeviceAndPinnedBuffers) {
  const int64_t n = 1 << 20;
  std::unique_ptr<DeviceBuffer> device;
  std::unique_ptr<PinnedBuffer> pinned;
  ASSERT_TRUE(DeviceBuffer::Create(0, n * 4, &device).ok());
  ASSERT_TRUE(PinnedBuffer::Create(n * 4, &pinned).ok());
  ASSERT_NE(device->data(), nullptr);
  ASSERT_NE(pinned->data(), nullptr);
  std::vector<int32_t> in(n), out(n, -1);
  std::iota(in.begin(), in.end(), 7);
  ASSERT_EQ(cudaMemcpy(device->data(), in.data(), n * 4, cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(pinned->data(), device->data(), n * 4, cudaMemcpyDeviceToHost), cudaSuccess);
  const auto* staged = static_cast<const int32_t*>(pinned->data());
  out.assign(staged, staged + n);
  EXPECT_EQ(in, out);
  cudaPointerAttributes attr{};
  ASSERT_EQ(cudaPointerGetAttributes(&attr, device->data()), cudaSuccess);
  EXPECT_EQ(attr.type, cudaMemoryTypeDevice);
  ASSERT_EQ(cudaPointerGetAttributes(&attr, pinned->data()), cudaSuccess);
  EXPECT_EQ(attr.type, cudaMemoryTypeHost);
}

TEST(DeviceMemory, EmptyBuffersOwnNothing) {
  std::unique_ptr<DeviceBuffer> device;
  std::unique_ptr<PinnedBuffer> pinned;
  ASSERT_TRUE(DeviceBuffer::Create(0, 0, &device).ok());
  ASSERT_TRUE(PinnedBuffer::Create(0, &pinned).ok());
  EXPECT_EQ(device->data(), nullptr);
  EXPECT_EQ(pinned->data(), nullptr);
}

Status AllocateOnMissingDevice() {
  BRAID_CHECK_CUDA(cudaSetDevice(VisibleDeviceCount() + 5));
  return Status::OK();
}

TEST(DeviceMemory, FailingCallNamesTheCallAndCudasReason) {
  Status st = AllocateOnMissingDevice();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kBackendError);
  EXPECT_NE(st.message().find("cudaSetDevice"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("cudaErrorInvalidDevice"), std::string::npos) << st.message();
}

TEST(DeviceMemory, DeviceGuardRestoresTheCurrentDevice) {
  int before = -1;
  ASSERT_EQ(cudaGetDevice(&before), cudaSuccess);
  {
    DeviceGuard guard(VisibleDeviceCount() - 1);
    int inside = -1;
    ASSERT_EQ(cudaGetDevice(&inside), cudaSuccess);
    EXPECT_EQ(inside, VisibleDeviceCount() - 1);
  }
  int after = -1;
  ASSERT_EQ(cudaGetDevice(&after), cudaSuccess);
  EXPECT_EQ(after, before);
}

}  // namespace
}  // namespace braid::cuda
