// The host MPI backend's neighbour exchange on its own duplicate of
// MPI_COMM_WORLD: a ring, the one-peer exponential graph round by round, ranks
// without messages, sizes 0, 1, a prime and a large one, with MPI calls cut into
// tiny pieces, repeated with new contents; and the arguments it refuses, on every
// rank alike, before anything is sent.
#include <gtest/gtest.h>
#include <mpi.h>

#include <climits>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "collectives/mpi/mpi_backend.h"
#include "tests/mpi/transport_test_values.h"

namespace braid {
namespace {

using test::AnyRankFailed;
using test::GetValue;
using test::SetValue;
using test::WorldRank;
using test::WorldSize;

// Who this rank sends to and receives from.
struct Graph {
  std::vector<int> to;
  std::vector<int> from;
};

// Both neighbours on a ring (one at two ranks, this rank itself at one).
Graph Ring() {
  const int r = WorldRank(), n = WorldSize();
  const int left = (r + n - 1) % n, right = (r + 1) % n;
  Graph g{{right}, {left}};
  if (left != right) {
    g.to.push_back(left);
    g.from.push_back(right);
  }
  return g;
}

// Round t of the one-peer exponential graph: to r + 2^t, from r - 2^t.
Graph OnePeerExponential(int t) {
  const int r = WorldRank(), n = WorldSize();
  const int hop = (1 << t) % n;
  return Graph{{(r + hop) % n}, {(r - hop + n) % n}};
}

// Small integers, exact in every dtype: who sent it, where, in which round.
double Payload(int sender, int64_t i, int round) {
  return static_cast<double>((sender * 31 + i * 7 + round) % 64);
}

// One exchange: this rank's tensor (one buffer, shared by all its sends, as a
// gossip step sends it) to every `to`, a block per `from`. Returns true when a
// received element is wrong (the first one is reported) or the call failed.
bool ExchangeFails(Backend* backend, const Graph& g, DataType dtype, int64_t count, int round) {
  const int rank = WorldRank();
  const size_t elem = DataTypeSize(dtype);
  std::vector<char> mine(count * elem + 1);
  for (int64_t i = 0; i < count; ++i) SetValue(mine.data(), dtype, i, Payload(rank, i, round));
  std::vector<char> blocks(g.from.size() * count * elem + 1, 0x5a);
  std::vector<PeerBuffer> sends, recvs;
  for (int peer : g.to) sends.push_back({peer, BufferView{mine.data(), count, dtype}});
  for (size_t k = 0; k < g.from.size(); ++k) {
    recvs.push_back({g.from[k], BufferView{blocks.data() + k * count * elem, count, dtype}});
  }
  const Status st = backend->NeighborExchange(sends, recvs);
  if (!st.ok()) {
    ADD_FAILURE() << st.ToString();
    return true;
  }
  for (size_t k = 0; k < g.from.size(); ++k) {
    const char* block = blocks.data() + k * count * elem;
    for (int64_t i = 0; i < count; ++i) {
      const double want = Payload(g.from[k], i, round);
      if (GetValue(block, dtype, i) == want) continue;
      ADD_FAILURE() << DataTypeName(dtype) << " count " << count << " round " << round << ": rank "
                    << rank << " from " << g.from[k] << " @" << i << ": got "
                    << GetValue(block, dtype, i) << " want " << want;
      return true;
    }
  }
  return false;
}

class NeighborExchangeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  }
  void TearDown() override {
    backend_.reset();
    MPI_Comm_free(&comm_);
  }
  Backend* Make(const mpi::MpiBackendOptions& options) {
    backend_.reset();
    Status st = mpi::MpiBackend::Create(comm_, options, &backend_);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return backend_.get();
  }
  static mpi::MpiBackendOptions Options(int64_t max_piece = INT_MAX) {
    mpi::MpiBackendOptions options;
    options.max_piece_elements = max_piece;
    return options;
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  std::unique_ptr<mpi::MpiBackend> backend_;
};

constexpr int64_t kCounts[] = {0, 1, 1009, (int64_t{1} << 20) + 7};
constexpr DataType kTypes[] = {DataType::kFloat32, DataType::kFloat16, DataType::kInt64,
                               DataType::kUInt8};

TEST_F(NeighborExchangeTest, Ring) {
  Backend* backend = Make(Options());
  for (DataType dtype : kTypes) {
    for (int64_t count : kCounts) {
      ASSERT_FALSE(AnyRankFailed(ExchangeFails(backend, Ring(), dtype, count, 0)))
          << DataTypeName(dtype) << " " << count;
    }
  }
}

// The graph changes every round (time-varying), the buffers get new contents.
TEST_F(NeighborExchangeTest, OnePeerExponentialRounds) {
  Backend* backend = Make(Options());
  for (int round = 0; round < 6; ++round) {
    const Graph g = OnePeerExponential(round % 3);
    for (int64_t count : {int64_t{1}, int64_t{1009}}) {
      ASSERT_FALSE(AnyRankFailed(ExchangeFails(backend, g, DataType::kFloat32, count, round)))
          << "round " << round;
    }
  }
}

// Pieces of 7 bytes: messages of 8 and 16 bytes take two and three MPI calls.
TEST_F(NeighborExchangeTest, TinyPiecesSplitEveryMessage) {
  Backend* backend = Make(Options(/*max_piece=*/7));
  for (int round = 0; round < 2; ++round) {
    for (int64_t count : {int64_t{1}, int64_t{2}, int64_t{1009}}) {
      ASSERT_FALSE(AnyRankFailed(ExchangeFails(backend, Ring(), DataType::kFloat64, count, round)))
          << count;
    }
  }
}

TEST_F(NeighborExchangeTest, EmptyListsAndRanksWithoutMessages) {
  Backend* backend = Make(Options());
  EXPECT_TRUE(backend->NeighborExchange({}, {}).ok());
  // Only the last rank sends, only rank 0 receives.
  const int rank = WorldRank(), n = WorldSize();
  Graph g;
  if (rank == n - 1) g.to.push_back(0);
  if (rank == 0) g.from.push_back(n - 1);
  for (int64_t count : kCounts) {
    ASSERT_FALSE(AnyRankFailed(ExchangeFails(backend, g, DataType::kInt64, count, 1))) << count;
  }
}

// A message's bytes are what travels: float32 sent, received as bytes.
TEST_F(NeighborExchangeTest, ReceivesBytesOfAnotherDtype) {
  Backend* backend = Make(Options());
  const int rank = WorldRank(), n = WorldSize();
  std::vector<float> mine(5, static_cast<float>(rank) + 0.5f), theirs(5);
  std::vector<PeerBuffer> sends = {{(rank + 1) % n, {mine.data(), 5, DataType::kFloat32}}};
  std::vector<PeerBuffer> recvs = {{(rank + n - 1) % n, {theirs.data(), 20, DataType::kUInt8}}};
  ASSERT_TRUE(backend->NeighborExchange(sends, recvs).ok());
  EXPECT_EQ(theirs[4], static_cast<float>((rank + n - 1) % n) + 0.5f);
}

// Every rank makes the same mistake; each is refused before anything is sent, so
// the backend stays usable.
TEST_F(NeighborExchangeTest, RefusesBadMessages) {
  Backend* backend = Make(Options());
  const int n = WorldSize();
  std::vector<float> a(8), b(8);
  auto refused = [&](std::vector<PeerBuffer> sends, std::vector<PeerBuffer> recvs,
                     const std::string& word) {
    const Status st = backend->NeighborExchange(sends, recvs);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << word;
    EXPECT_NE(st.message().find(word), std::string::npos) << st.message();
  };
  const BufferView va{a.data(), 8, DataType::kFloat32}, vb{b.data(), 8, DataType::kFloat32};
  refused({{n, va}}, {}, "no such rank");
  refused({}, {{-1, va}}, "no such rank");
  refused({{0, va}, {0, va}}, {}, "appears twice");
  refused({}, {{0, va}, {0, vb}}, "appears twice");
  refused({{0, BufferView{a.data(), 8, DataType::kFloat32, 0}}}, {}, "host memory");
  refused({}, {{0, BufferView{nullptr, 8, DataType::kFloat32}}}, "null data pointer");
  refused({}, {{0, BufferView{a.data(), -1, DataType::kFloat32}}}, "negative");
  refused({{0, va}}, {{0, BufferView{a.data() + 4, 4, DataType::kFloat32}}}, "overlaps");
  if (n > 1)
    refused({}, {{0, va}, {1, BufferView{a.data() + 7, 1, DataType::kFloat32}}}, "overlaps");
  ASSERT_FALSE(AnyRankFailed(ExchangeFails(backend, Ring(), DataType::kFloat32, 17, 2)));
}

}  // namespace
}  // namespace braid
