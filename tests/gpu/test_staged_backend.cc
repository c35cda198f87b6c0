// The host-staged backend: GPU buffers reduced, gathered and broadcast through
// pinned host memory and the MPI host backend. Every rank uses the same GPU
// (several ranks sharing one device is what this path is for), so CMake runs the
// suite at np 1 to 4. Expected values depend on the rank and the number of ranks
// only (nccl_test_util.h), so every check holds at any np.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "collectives/cuda/device_memory.h"
#include "collectives/staged/staged_backend.h"
#include "collectives/transport.h"
#include "device_backend_checks.h"
#include "nccl_test_util.h"

namespace braid::staged {
namespace {

using namespace braid::nccl::testing;  // NOLINT: the GPU suites' shared helpers
using Clock = std::chrono::steady_clock;

class StagedBackendTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Status st = CreateTransport(TransportOptions(), &transport_);
    ASSERT_TRUE(st.ok()) << st.ToString();
    host_ = transport_->BackendFor(kCpuDevice);
    ASSERT_NE(host_, nullptr);
    ASSERT_EQ(cudaGetDevice(&device_), cudaSuccess);
    st = CreateStagedBackend(host_, transport_->info(), device_, &backend_);
    ASSERT_TRUE(st.ok()) << st.ToString();
    // Tiny segments: a 1 MiB buffer crosses the pipeline in dozens of them.
    StagedOptions small;
    small.segment_bytes = 40000;
    st = CreateStagedBackend(host_, transport_->info(), device_, small, &small_segments_);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  static void TearDownTestSuite() {
    backend_.reset();
    small_segments_.reset();
    transport_.reset();
  }
  void SetUp() override { ASSERT_NE(backend_, nullptr) << "the suite's set-up failed"; }

  static Backend& staged() { return *backend_; }
  static int rank() { return transport_->info().rank; }
  static int size() { return transport_->info().size; }
  static std::unique_ptr<cuda::DeviceBuffer> Alloc(int64_t bytes) {
    std::unique_ptr<cuda::DeviceBuffer> buf;
    Status st = cuda::DeviceBuffer::Create(device_, bytes, &buf);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return buf;
  }

  static DevicePlace place() { return {rank(), size(), device_}; }

  static std::unique_ptr<Transport> transport_;
  static Backend* host_;
  static int device_;
  static std::unique_ptr<Backend> backend_;
  static std::unique_ptr<Backend> small_segments_;
};
std::unique_ptr<Transport> StagedBackendTest::transport_;
Backend* StagedBackendTest::host_ = nullptr;
int StagedBackendTest::device_ = 0;
std::unique_ptr<Backend> StagedBackendTest::backend_;
std::unique_ptr<Backend> StagedBackendTest::small_segments_;

TEST_F(StagedBackendTest, HandlesItsOwnDeviceOnly) {
  EXPECT_STREQ(staged().name(), "mpi (host-staged)");
  EXPECT_TRUE(staged().CanHandle(device_));
  EXPECT_FALSE(staged().CanHandle(kCpuDevice));
  EXPECT_FALSE(staged().CanHandle(device_ + 1));
}

TEST_F(StagedBackendTest, AllreduceEveryDtypeOpAndSize) {
  CheckAllreduceEverywhere(staged(), place(), {0, 1, 17, (int64_t{1} << 20) + 3, int64_t{9} << 20});
}

// Segment boundaries fall inside elements' runs of every width; the result must
// not depend on them.
TEST_F(StagedBackendTest, AllreduceAcrossManySegments) {
  auto buf = Alloc(((int64_t{1} << 20) + 3) * 8);
  for (DataType dtype : {DataType::kFloat64, DataType::kFloat16, DataType::kInt8}) {
    for (int64_t n : {int64_t{9999}, int64_t{10000}, (int64_t{1} << 20) + 3}) {
      CheckAllreduce(*small_segments_, place(), dtype, ReduceOp::kSum, n, buf.get());
    }
  }
}

TEST_F(StagedBackendTest, AllreduceManyPacksIntoStagingAndUnpacks) {
  for (DataType dtype : {DataType::kFloat32, DataType::kInt32, DataType::kBFloat16}) {
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kMax, ReduceOp::kProduct}) {
      CheckAllreduceMany(staged(), place(), dtype, op, /*spare=*/64);
    }
  }
}

TEST_F(StagedBackendTest, ScalingIsFoldedIntoThePasses) {
  CheckAllreduceScaled(staged(), place());
}

TEST_F(StagedBackendTest, AllgathervOutOfPlaceAndInPlace) {
  CheckAllgatherv(staged(), place(), {DataType::kFloat32, DataType::kInt64, DataType::kUInt8});
}

TEST_F(StagedBackendTest, BroadcastFromEveryRoot) {
  CheckBroadcastFromEveryRoot(staged(), place());
}

// The copies wait for the work queued on the buffer's own stream: the input is
// written on a stream held at a gate, and the reduction must still see it.
TEST_F(StagedBackendTest, AllreduceWaitsForTheBuffersStream) {
  const int64_t n = (int64_t{1} << 20) + 3;
  auto buf = Alloc(n * 4);
  ASSERT_EQ(cudaMemset(buf->data(), 0, n * 4), cudaSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::unique_ptr<cuda::PinnedBuffer> host;
  ASSERT_TRUE(cuda::PinnedBuffer::Create(n * 4, &host).ok());
  auto input = Image(DataType::kFloat32, n, [&](int64_t i) {
    return Input(DataType::kFloat32, ReduceOp::kSum, rank(), i);
  });
  std::memcpy(host->data(), input.data(), input.size());
  cudaStream_t producer = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&producer, cudaStreamNonBlocking), cudaSuccess);
  {
    StreamGate gate(producer);
    ASSERT_TRUE(gate.Close());
    ASSERT_EQ(cudaMemcpyAsync(buf->data(), host->data(), n * 4, cudaMemcpyHostToDevice, producer),
              cudaSuccess);
    gate.OpenAfter(std::chrono::milliseconds(200));
    const auto start = Clock::now();
    Status st = small_segments_->Allreduce(
        View(buf->data(), n, DataType::kFloat32, device_, producer), ReduceOp::kSum);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(150));
  }
  auto want = Image(DataType::kFloat32, n, [&](int64_t i) {
    return Reduced(DataType::kFloat32, ReduceOp::kSum, size(), i);
  });
  EXPECT_EQ(FirstMismatch(Download(buf->data(), want.size()), want, DataType::kFloat32), -1);
  ASSERT_EQ(cudaStreamDestroy(producer), cudaSuccess);
}

TEST_F(StagedBackendTest, BadArgumentsAreClearErrorsAndLeaveTheBackendUsable) {
  auto buf = Alloc(16 * 8);
  const BufferView good = View(buf->data(), 16, DataType::kFloat32, device_);
  std::vector<float> host(16);
  ExpectInvalid(
      staged().Allreduce(View(host.data(), 16, DataType::kFloat32, device_), ReduceOp::kSum),
      "allreduce: the buffer is host memory");
  BufferView v = good;
  v.device = kCpuDevice;
  ExpectInvalid(staged().Allreduce(v, ReduceOp::kSum), "not cpu");
  v = good;
  v.count = -1;
  ExpectInvalid(staged().Allreduce(v, ReduceOp::kSum), "negative element count");
  ExpectInvalid(staged().Broadcast(good, size()), "outside [0, ");
  ExpectInvalid(staged().Allgatherv(good, good, std::vector<int64_t>(size() + 1, 0)), "counts for");
  EXPECT_TRUE(staged().Allreduce(good, ReduceOp::kMax).ok());
  EXPECT_TRUE(staged().Barrier().ok());
}

}  // namespace
}  // namespace braid::staged
