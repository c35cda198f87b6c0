// The neighbour collectives on GPU tensors, through the engine's device path on a
// fake device (tests/mpi/fake_device_plane.h) so that it runs on every machine:
// the sends packed and the mixing queued on the device plane's stream, the
// exchange on the fake device backend, the exchange's output in device memory.
// The CUDA mixing kernel itself is checked in tests/gpu.
#include <string>
#include <vector>

#include "tests/mpi/c_api_test_util.h"
#include "tests/mpi/fake_device_plane.h"

namespace {

using ctu::Handle;
using ctu::Tensor;

constexpr int kDevice = 0;

const bool kRegistered = [] {
  fake::RegisterFakeDevicePlugin();
  return true;
}();

class NeighborDevice : public ctu::BraidTest {};

std::vector<int> RingPeers(int rank, int n) {
  std::vector<int> p;
  for (int q : {(rank + n - 1) % n, (rank + 1) % n})
    if (q != rank && std::find(p.begin(), p.end(), q) == p.end()) p.push_back(q);
  std::sort(p.begin(), p.end());
  return p;
}

double Value(int rank, int64_t i, int salt) {
  return static_cast<double>((i * 5 + rank * 11 + salt) % 17) - 8.0;
}

// Two tensors with the same graph (one packed send) and in place, then a
// different graph for one of them (per-peer sends), on the device.
TEST_F(NeighborDevice, MixesOnTheDevice) {
  const std::vector<int> ring = RingPeers(rank_, size_);
  const std::vector<int> next =
      size_ > 1 ? std::vector<int>{(rank_ + 1) % size_} : std::vector<int>{};
  const std::vector<int> prev =
      size_ > 1 ? std::vector<int>{(rank_ + size_ - 1) % size_} : std::vector<int>{};
  for (int round = 0; round < 2; ++round) {
    const std::vector<int>& send_b = round == 0 ? ring : next;
    const std::vector<int>& recv_b = round == 0 ? ring : prev;
    Tensor a(BRAID_FLOAT64, {11}, kDevice);
    Tensor b64(BRAID_FLOAT64, {6}, kDevice);
    a.Fill([&](int64_t i) { return Value(rank_, i, round); });
    b64.Fill([&](int64_t i) { return Value(rank_, i, 7 + round); });
    const double wa = 1.0 / static_cast<double>(ring.size() + 1);
    const double wb = 1.0 / static_cast<double>(recv_b.size() + 1);
    std::vector<double> weights_a(ring.size(), wa), weights_b(recv_b.size(), wb);
    Handle ha, hb;
    const std::string na = ctu::UniqueName("a"), nb = ctu::UniqueName("b");
    ASSERT_EQ(braid_neighbor_allreduce_async(na.c_str(), a.desc(), a.data(), ring.data(),
                                             int(ring.size()), ring.data(), int(ring.size()), wa,
                                             weights_a.data(), ha.out()),
              BRAID_OK)
        << braid_last_error();
    ASSERT_EQ(braid_neighbor_allreduce_async(nb.c_str(), b64.desc(), b64.data(), send_b.data(),
                                             int(send_b.size()), recv_b.data(), int(recv_b.size()),
                                             wb, weights_b.data(), hb.out()),
              BRAID_OK)
        << braid_last_error();
    ASSERT_EQ(ha.Wait(), BRAID_OK) << ha.Error();
    ASSERT_EQ(hb.Wait(), BRAID_OK) << hb.Error();
    EXPECT_TRUE(ctu::MatchesValues(
        a,
        [&](int64_t i) {
          double s = Value(rank_, i, round);
          for (int p : ring) s += Value(p, i, round);
          return s * wa;
        },
        1e-14));
    EXPECT_TRUE(ctu::MatchesValues(
        b64,
        [&](int64_t i) {
          double s = Value(rank_, i, 7 + round);
          for (int p : recv_b) s += Value(p, i, 7 + round);
          return s * wb;
        },
        1e-14))
        << "round " << round;
  }
}

TEST_F(NeighborDevice, ExchangeOutputIsOnTheDevice) {
  const std::vector<int> ring = RingPeers(rank_, size_);
  Tensor x(BRAID_INT32, {4}, kDevice);
  x.Fill([&](int64_t i) { return 100 * rank_ + i; });
  Handle h;
  const std::string name = ctu::UniqueName("exchange");
  ASSERT_EQ(braid_neighbor_exchange_async(name.c_str(), x.desc(), ring.data(), int(ring.size()),
                                          ring.data(), int(ring.size()), h.out()),
            BRAID_OK);
  ASSERT_EQ(h.Wait(), BRAID_OK) << h.Error();
  const void* data = nullptr;
  int ndim = 0;
  const int64_t* shape = nullptr;
  ASSERT_EQ(braid_handle_output(h.get(), &data, &ndim, &shape), BRAID_OK);
  ASSERT_EQ(ndim, 2);
  ASSERT_EQ(shape[0], static_cast<int64_t>(ring.size()));
  for (size_t k = 0; k < ring.size(); ++k) {
    for (int64_t i = 0; i < 4; ++i)
      EXPECT_EQ(static_cast<const int32_t*>(data)[k * 4 + i], 100 * ring[k] + i);
  }
}

}  // namespace
