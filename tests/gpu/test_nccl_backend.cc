// The NCCL backend, one GPU per process. Expected values are computed from the
// rank and the number of ranks, so every check holds at any np; CMake runs the
// suite at np 1 only, since NCCL refuses two ranks of one communicator on one GPU.
// With one rank a reduction returns its input: there the suite shows that the
// calls reach NCCL, move the data and leave it intact (out-of-place allgatherv
// blocks are copied by NCCL; a fused group goes through the staging buffer), not
// NCCL's arithmetic across ranks.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "collectives/cuda/device_memory.h"
#include "collectives/nccl/nccl_backend.h"
#include "collectives/transport.h"
#include "device_backend_checks.h"
#include "nccl_test_util.h"

namespace braid::nccl {
namespace {

using namespace braid::nccl::testing;  // NOLINT: the suite's own helpers
using Clock = std::chrono::steady_clock;

class NcclBackendTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Status st = CreateTransport(TransportOptions(), &transport_);
    ASSERT_TRUE(st.ok()) << st.ToString();
    NcclOptions options;
    options.stall_timeout_seconds = 120;  // a hang fails the suite before CTest kills it
    st = NcclBackend::Create(transport_->control(), transport_->info(), options, &backend_);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  static void TearDownTestSuite() {
    backend_.reset();
    transport_.reset();
  }
  void SetUp() override { ASSERT_NE(backend_, nullptr) << "the suite's set-up failed"; }

  static NcclBackend& nccl() { return *backend_; }
  static DevicePlace place() { return {backend_->rank(), backend_->size(), backend_->device()}; }
  static int device() { return backend_->device(); }
  static std::unique_ptr<cuda::DeviceBuffer> Alloc(int64_t bytes) {
    std::unique_ptr<cuda::DeviceBuffer> buf;
    Status st = cuda::DeviceBuffer::Create(device(), bytes, &buf);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return buf;
  }

  static std::unique_ptr<Transport> transport_;
  static std::unique_ptr<NcclBackend> backend_;
};
std::unique_ptr<Transport> NcclBackendTest::transport_;
std::unique_ptr<NcclBackend> NcclBackendTest::backend_;

TEST_F(NcclBackendTest, HandlesItsOwnDeviceOnly) {
  EXPECT_STREQ(nccl().name(), "nccl");
  EXPECT_TRUE(nccl().CanHandle(device()));
  EXPECT_FALSE(nccl().CanHandle(kCpuDevice));
  EXPECT_FALSE(nccl().CanHandle(device() + 1));
  EXPECT_EQ(nccl().size(), transport_->info().size);
  EXPECT_EQ(nccl().rank(), transport_->info().rank);
}

TEST_F(NcclBackendTest, AllreduceEveryDtypeOpAndSize) {
  CheckAllreduceEverywhere(nccl(), place(), {0, 1, 17, (int64_t{1} << 20) + 3, int64_t{64} << 20});
}

TEST_F(NcclBackendTest, AllreduceManyPacksIntoStagingAndUnpacks) {
  for (DataType dtype : {DataType::kFloat32, DataType::kInt32, DataType::kBFloat16}) {
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kMax, ReduceOp::kProduct}) {
      CheckAllreduceMany(nccl(), place(), dtype, op, /*spare=*/64);
    }
  }
}

TEST_F(NcclBackendTest, ScalingIsFoldedIntoThePasses) {
  CheckAllreduceScaled(nccl(), place());
}

TEST_F(NcclBackendTest, AllreduceManyOfOneBufferReducesInPlace) {
  const int64_t n = 1000;
  auto buf = Alloc(n * 4);
  auto staging = Alloc(n * 4);
  auto in = Image(DataType::kFloat32, n, [&](int64_t i) {
    return Input(DataType::kFloat32, ReduceOp::kSum, nccl().rank(), i);
  });
  ASSERT_TRUE(Upload(in, buf->data()));
  ASSERT_EQ(cudaMemset(staging->data(), 0x7f, n * 4), cudaSuccess);
  Status st =
      nccl().AllreduceMany({View(buf->data(), n, DataType::kFloat32, device())}, ReduceOp::kSum,
                           View(staging->data(), n, DataType::kFloat32, device()));
  ASSERT_TRUE(st.ok()) << st.ToString();
  auto want = Image(DataType::kFloat32, n, [&](int64_t i) {
    return Reduced(DataType::kFloat32, ReduceOp::kSum, nccl().size(), i);
  });
  EXPECT_EQ(FirstMismatch(Download(buf->data(), n * 4), want, DataType::kFloat32), -1);
  EXPECT_EQ(Download(staging->data(), n * 4), std::vector<char>(n * 4, 0x7f));
}

TEST_F(NcclBackendTest, AllreduceManyRejectsABadGroupAndStaysUsable) {
  auto a = Alloc(64 * 4), b = Alloc(64 * 4), staging = Alloc(128 * 4);
  const BufferView va = View(a->data(), 64, DataType::kFloat32, device());
  const BufferView vb = View(b->data(), 64, DataType::kFloat32, device());
  Status st = nccl().AllreduceMany({va, vb}, ReduceOp::kSum,
                                   View(staging->data(), 64, DataType::kFloat32, device()));
  EXPECT_EQ(st.code(), StatusCode::kInternal) << st.ToString();
  EXPECT_NE(st.message().find("staging holds 256 bytes, the group needs 512"), std::string::npos);
  BufferView mixed = vb;
  mixed.dtype = DataType::kInt32;
  st = nccl().AllreduceMany({va, mixed}, ReduceOp::kSum,
                            View(staging->data(), 64, DataType::kFloat32, device()));
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
  EXPECT_TRUE(nccl()
                  .AllreduceMany({va, vb}, ReduceOp::kSum,
                                 View(staging->data(), 64, DataType::kFloat64, device()))
                  .ok());
}

TEST_F(NcclBackendTest, AllgathervOutOfPlaceAndInPlace) {
  CheckAllgatherv(nccl(), place(),
                  {DataType::kFloat32, DataType::kInt64, DataType::kUInt8, DataType::kBFloat16});
}

// The backend's stream waits for the work queued on a buffer's own stream: the
// block is written on a stream held at a gate, and the gathered result must still
// be the new block, not what the buffer held before.
TEST_F(NcclBackendTest, AllgathervWaitsForTheBuffersStream) {
  const int rank = nccl().rank(), size = nccl().size();
  const int64_t n = 4096;
  std::vector<int64_t> counts(size, n);
  auto send = Alloc(n * 4), recv = Alloc(n * 4 * size);
  ASSERT_EQ(cudaMemset(send->data(), 0xff, n * 4), cudaSuccess);  // not a block value
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::unique_ptr<cuda::PinnedBuffer> host;
  ASSERT_TRUE(cuda::PinnedBuffer::Create(n * 4, &host).ok());
  auto block = Image(DataType::kFloat32, n, [&](int64_t j) { return BlockValue(rank, j); });
  std::memcpy(host->data(), block.data(), block.size());
  cudaStream_t producer = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&producer, cudaStreamNonBlocking), cudaSuccess);
  {
    StreamGate gate(producer);
    ASSERT_TRUE(gate.Close());
    ASSERT_EQ(cudaMemcpyAsync(send->data(), host->data(), n * 4, cudaMemcpyHostToDevice, producer),
              cudaSuccess);
    gate.OpenAfter(std::chrono::milliseconds(200));
    const auto start = Clock::now();
    Status st = nccl().Allgatherv(
        View(send->data(), n, DataType::kFloat32, device(), producer),
        View(recv->data(), n * size, DataType::kFloat32, device(), producer), counts);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(150));
  }
  auto want = GatheredImage(DataType::kFloat32, counts);
  EXPECT_EQ(FirstMismatch(Download(recv->data(), want.size()), want, DataType::kFloat32), -1);
  ASSERT_EQ(cudaStreamDestroy(producer), cudaSuccess);
}

TEST_F(NcclBackendTest, BroadcastFromEveryRoot) {
  CheckBroadcastFromEveryRoot(nccl(), place());
}

TEST_F(NcclBackendTest, BarrierCompletes) {
  for (int i = 0; i < 3; ++i) {
    Status st = nccl().Barrier();
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
}

TEST_F(NcclBackendTest, BadArgumentsAreClearErrorsAndLeaveTheBackendUsable) {
  auto buf = Alloc(16 * 8);
  const BufferView good = View(buf->data(), 16, DataType::kFloat32, device());
  BufferView v = good;
  v.dtype = static_cast<DataType>(42);
  ExpectInvalid(nccl().Allreduce(v, ReduceOp::kSum), "invalid data type 42");
  ExpectInvalid(nccl().Allreduce(good, ReduceOp::kAverage), "does not average");
  ExpectInvalid(nccl().Allreduce(good, static_cast<ReduceOp>(9)), "invalid reduce op 9");
  std::vector<float> host(16);
  ExpectInvalid(
      nccl().Allreduce(View(host.data(), 16, DataType::kFloat32, device()), ReduceOp::kSum),
      "allreduce: the buffer is host memory");
  std::unique_ptr<cuda::PinnedBuffer> pinned;
  ASSERT_TRUE(cuda::PinnedBuffer::Create(64, &pinned).ok());
  ExpectInvalid(nccl().Broadcast(View(pinned->data(), 16, DataType::kFloat32, device()), 0),
                "broadcast: the buffer is host memory");
  v = good;
  v.device = kCpuDevice;
  ExpectInvalid(nccl().Allreduce(v, ReduceOp::kSum), "not cpu");
  v = good;
  v.count = -1;
  ExpectInvalid(nccl().Allreduce(v, ReduceOp::kSum), "negative element count");
  ExpectInvalid(nccl().Allreduce(View(nullptr, 4, DataType::kFloat32, device()), ReduceOp::kSum),
                "null data pointer");
  ExpectInvalid(nccl().Broadcast(good, nccl().size()), "outside [0, ");
  ExpectInvalid(nccl().Allgatherv(good, good, std::vector<int64_t>(nccl().size() + 1, 0)),
                "counts for");
  BufferView short_recv = good;
  short_recv.count = 16 * nccl().size() - 1;
  ExpectInvalid(nccl().Allgatherv(good, short_recv, std::vector<int64_t>(nccl().size(), 16)),
                "counts sum to");
  EXPECT_TRUE(nccl().Allreduce(good, ReduceOp::kMax).ok());
}

// With one rank nothing can stall inside NCCL, so the stall is upstream: the
// buffer's stream is held at a gate past the deadline. The watchdog aborts the
// communicator at the deadline; the call returns once the gate opens (the abort
// cannot end work that is not NCCL's, see nccl_wait.h) and names the collective,
// and the backend refuses everything afterwards. Every rank stalls alike, so this
// also holds at np > 1.
TEST_F(NcclBackendTest, StallPastTheTimeoutAbortsTheCommunicator) {
  NcclOptions options;
  options.stall_timeout_seconds = 0.5;
  options.poll_interval_us = 1000;
  std::unique_ptr<NcclBackend> fragile;
  Status st = NcclBackend::Create(transport_->control(), transport_->info(), options, &fragile);
  ASSERT_TRUE(st.ok()) << st.ToString();
  auto buf = Alloc(1024 * 4);
  cudaStream_t producer = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&producer, cudaStreamNonBlocking), cudaSuccess);
  {
    StreamGate gate(producer);
    ASSERT_TRUE(gate.Close());
    gate.OpenAfter(std::chrono::milliseconds(2500));
    const auto start = Clock::now();
    st = fragile->Allreduce(View(buf->data(), 1024, DataType::kFloat32, device(), producer),
                            ReduceOp::kSum);
    EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(500));
  }
  EXPECT_EQ(st.code(), StatusCode::kAborted) << st.ToString();
  EXPECT_NE(st.message().find("nccl allreduce of 1024 float32"), std::string::npos)
      << st.ToString();
  EXPECT_NE(st.message().find("stall timeout 0.5 s"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("the communicator was aborted"), std::string::npos) << st.ToString();
  st = fragile->Barrier();
  EXPECT_EQ(st.code(), StatusCode::kAborted) << st.ToString();
  EXPECT_NE(st.message().find("takes no more work"), std::string::npos) << st.ToString();
  fragile.reset();
  ASSERT_EQ(cudaStreamDestroy(producer), cudaSuccess);
  // The suite's own backend is unaffected.
  EXPECT_TRUE(nccl().Barrier().ok());
}

}  // namespace
}  // namespace braid::nccl
