// Neighbour exchange of GPU buffers through the NCCL backend (ncclSend / ncclRecv
// in one group). NCCL refuses two ranks of one communicator on one GPU, so CMake
// runs the suite at np 1, where the graph is this rank with itself: the calls
// reach NCCL and move the bytes; the graphs across ranks are the host-staged
// suite's (test_neighbor_exchange_gpu.cc), which shares the checks.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "collectives/nccl/nccl_backend.h"
#include "collectives/transport.h"
#include "neighbor_exchange_checks.h"

namespace braid::nccl {
namespace {

using namespace braid::nccl::testing;  // NOLINT: the GPU suites' shared helpers

class NcclNeighborExchangeTest : public ::testing::Test {
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

  static std::unique_ptr<Transport> transport_;
  static std::unique_ptr<NcclBackend> backend_;
};
std::unique_ptr<Transport> NcclNeighborExchangeTest::transport_;
std::unique_ptr<NcclBackend> NcclNeighborExchangeTest::backend_;

TEST_F(NcclNeighborExchangeTest, RingAndOnePeerGraphs) {
  const DevicePlace p = place();
  for (DataType dtype : {DataType::kFloat32, DataType::kFloat16, DataType::kInt64}) {
    for (int64_t count : {int64_t{0}, int64_t{1}, int64_t{1009}, (int64_t{1} << 20) + 7}) {
      EXPECT_FALSE(DeviceExchangeFails(nccl(), p, RingGraph(p.rank, p.size), dtype, count, 0))
          << DataTypeName(dtype) << " " << count;
    }
  }
  for (int round = 0; round < 3; ++round) {
    EXPECT_FALSE(DeviceExchangeFails(nccl(), p, OnePeerGraph(p.rank, p.size, round),
                                     DataType::kFloat32, 4099, round));
  }
  EXPECT_TRUE(nccl().NeighborExchange({}, {}).ok());
}

// Refused before anything is enqueued; the communicator stays usable.
TEST_F(NcclNeighborExchangeTest, RefusesBadMessages) {
  const DevicePlace p = place();
  auto buffer = p.Alloc(64);
  const BufferView on_device{buffer->data(), 16, DataType::kFloat32, p.device};
  std::vector<float> host(16);
  ExpectInvalid(nccl().NeighborExchange({{p.size, on_device}}, {}), "no such rank");
  ExpectInvalid(nccl().NeighborExchange({{0, on_device}, {0, on_device}}, {}), "appears twice");
  ExpectInvalid(
      nccl().NeighborExchange({}, {{0, BufferView{host.data(), 16, DataType::kFloat32, p.device}}}),
      "host memory");
  ExpectInvalid(nccl().NeighborExchange({{0, on_device}},
                                        {{0, BufferView{static_cast<char*>(buffer->data()) + 32, 8,
                                                        DataType::kFloat32, p.device}}}),
                "overlaps");
  EXPECT_FALSE(
      DeviceExchangeFails(nccl(), p, RingGraph(p.rank, p.size), DataType::kFloat32, 17, 1));
}

}  // namespace
}  // namespace braid::nccl
