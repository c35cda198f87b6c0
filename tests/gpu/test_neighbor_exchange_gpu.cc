// Neighbour exchange of GPU buffers through the host-staged backend (device to
// pinned host memory, the MPI backend's exchange, back to the device). Every rank
// uses the same GPU, so CMake runs the suite at np 1 to 4: a ring, the one-peer
// exponential graph round by round, ranks without messages, sizes 0, 1, a prime
// and a large one, and the arguments it refuses.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "collectives/staged/staged_backend.h"
#include "collectives/transport.h"
#include "neighbor_exchange_checks.h"

namespace braid::staged {
namespace {

using namespace braid::nccl::testing;  // NOLINT: the GPU suites' shared helpers

// Collective: true on every rank when any rank failed, so that the ranks stop together.
bool AnyRankFailed(bool failed_here) {
  int mine = failed_here ? 1 : 0, any = 0;
  MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return any != 0;
}

class StagedNeighborExchangeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Status st = CreateTransport(TransportOptions(), &transport_);
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_EQ(cudaGetDevice(&device_), cudaSuccess);
    st = CreateStagedBackend(transport_->BackendFor(kCpuDevice), transport_->info(), device_,
                             &backend_);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  static void TearDownTestSuite() {
    backend_.reset();
    transport_.reset();
  }
  void SetUp() override { ASSERT_NE(backend_, nullptr) << "the suite's set-up failed"; }

  static Backend& staged() { return *backend_; }
  static DevicePlace place() { return {transport_->info().rank, transport_->info().size, device_}; }

  static std::unique_ptr<Transport> transport_;
  static int device_;
  static std::unique_ptr<Backend> backend_;
};
std::unique_ptr<Transport> StagedNeighborExchangeTest::transport_;
int StagedNeighborExchangeTest::device_ = 0;
std::unique_ptr<Backend> StagedNeighborExchangeTest::backend_;

TEST_F(StagedNeighborExchangeTest, Ring) {
  const DevicePlace p = place();
  for (DataType dtype : {DataType::kFloat32, DataType::kFloat16, DataType::kInt64}) {
    for (int64_t count : {int64_t{0}, int64_t{1}, int64_t{1009}, (int64_t{1} << 20) + 7}) {
      const bool failed =
          DeviceExchangeFails(staged(), p, RingGraph(p.rank, p.size), dtype, count, 0);
      ASSERT_FALSE(AnyRankFailed(failed)) << DataTypeName(dtype) << " " << count;
    }
  }
}

TEST_F(StagedNeighborExchangeTest, OnePeerExponentialRounds) {
  const DevicePlace p = place();
  for (int round = 0; round < 4; ++round) {
    const PeerGraph g = OnePeerGraph(p.rank, p.size, round % 2);
    ASSERT_FALSE(
        AnyRankFailed(DeviceExchangeFails(staged(), p, g, DataType::kFloat32, 4099, round)))
        << "round " << round;
  }
}

TEST_F(StagedNeighborExchangeTest, RanksWithoutMessages) {
  const DevicePlace p = place();
  EXPECT_TRUE(staged().NeighborExchange({}, {}).ok());
  PeerGraph g;  // only the last rank sends, only rank 0 receives
  if (p.rank == p.size - 1) g.to.push_back(0);
  if (p.rank == 0) g.from.push_back(p.size - 1);
  ASSERT_FALSE(AnyRankFailed(DeviceExchangeFails(staged(), p, g, DataType::kFloat64, 1009, 1)));
}

// Refused before anything moves, on every rank alike; the backend stays usable.
TEST_F(StagedNeighborExchangeTest, RefusesBadMessages) {
  const DevicePlace p = place();
  auto buffer = p.Alloc(64);
  const BufferView on_device{buffer->data(), 16, DataType::kFloat32, p.device};
  std::vector<float> host(16);
  ExpectInvalid(staged().NeighborExchange({{p.size, on_device}}, {}), "no such rank");
  ExpectInvalid(staged().NeighborExchange({}, {{0, on_device}, {0, on_device}}), "appears twice");
  ExpectInvalid(
      staged().NeighborExchange({{0, BufferView{host.data(), 16, DataType::kFloat32}}}, {}),
      "not cpu");
  ASSERT_FALSE(AnyRankFailed(
      DeviceExchangeFails(staged(), p, RingGraph(p.rank, p.size), DataType::kFloat32, 17, 2)));
}

}  // namespace
}  // namespace braid::staged
