// Neighbour exchanges of device buffers for the GPU backends' suites (NCCL,
// host-staged): a graph given by whom this rank sends to and receives from, and a
// check that every received block holds what its sender sent.
#pragma once

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "collectives/backend.h"
#include "device_backend_checks.h"
#include "nccl_test_util.h"

namespace braid::nccl::testing {

struct PeerGraph {
  std::vector<int> to;
  std::vector<int> from;
};

// Both ring neighbours (one at two ranks, this rank itself at one).
inline PeerGraph RingGraph(int rank, int size) {
  const int left = (rank + size - 1) % size, right = (rank + 1) % size;
  PeerGraph g{{right}, {left}};
  if (left != right) {
    g.to.push_back(left);
    g.from.push_back(right);
  }
  return g;
}

// Round t of the one-peer exponential graph: to rank + 2^t, from rank - 2^t.
inline PeerGraph OnePeerGraph(int rank, int size, int t) {
  const int hop = (1 << t) % size;
  return PeerGraph{{(rank + hop) % size}, {(rank - hop + size) % size}};
}

// Exact in every dtype: who sent it, where, in which round.
inline double PeerPayload(int sender, int64_t i, int round) {
  return static_cast<double>((sender * 31 + i * 7 + round) % 64);
}

// One exchange: this rank's tensor (one device buffer for all its sends) to every
// `to`, one device block per `from`. True when the call failed or a block is wrong
// (the first wrong element is reported).
inline bool DeviceExchangeFails(Backend& backend, const DevicePlace& place, const PeerGraph& g,
                                DataType dtype, int64_t count, int round) {
  const size_t elem = DataTypeSize(dtype);
  const int64_t bytes = count * static_cast<int64_t>(elem);
  auto mine = place.Alloc(bytes);
  auto blocks = place.Alloc(bytes * static_cast<int64_t>(g.from.size()));
  EXPECT_TRUE(
      Upload(Image(dtype, count, [&](int64_t i) { return PeerPayload(place.rank, i, round); }),
             mine->data()));
  if (blocks->bytes() > 0) cudaMemset(blocks->data(), 0x5a, static_cast<size_t>(blocks->bytes()));
  std::vector<PeerBuffer> sends, recvs;
  for (int peer : g.to)
    sends.push_back({peer, BufferView{mine->data(), count, dtype, place.device}});
  for (size_t k = 0; k < g.from.size(); ++k) {
    char* block = static_cast<char*>(blocks->data()) + k * bytes;
    recvs.push_back({g.from[k], BufferView{block, count, dtype, place.device}});
  }
  const Status st = backend.NeighborExchange(sends, recvs);
  if (!st.ok()) {
    ADD_FAILURE() << st.ToString();
    return true;
  }
  for (size_t k = 0; k < g.from.size(); ++k) {
    const auto want =
        Image(dtype, count, [&](int64_t i) { return PeerPayload(g.from[k], i, round); });
    const auto got = Download(static_cast<char*>(blocks->data()) + k * bytes, want.size());
    const int64_t bad = FirstMismatch(got, want, dtype);
    if (bad < 0) continue;
    ADD_FAILURE() << DataTypeName(dtype) << " count " << count << " round " << round << ": rank "
                  << place.rank << " from " << g.from[k] << " differs at " << bad;
    return true;
  }
  return false;
}

}  // namespace braid::nccl::testing
