// The neighbour collectives through the C API, at every world size: mixing over a
// ring and over one-peer exponential graphs against a reference computed here from
// every rank's inputs and the mixing weights, the plain exchange, several tensors
// with different graphs fused into one exchange, a graph that changes every call,
// and the errors: lists wrong on one rank (refused there at once) and graphs that
// do not fit together across ranks (the same error on every rank, engine usable).
#include <cmath>
#include <string>
#include <vector>

#include "tests/mpi/c_api_test_util.h"

namespace {

using ctu::Handle;
using ctu::Tensor;

class Neighbor : public ctu::BraidTest {};

// A rank's part of a graph: whom it sends to, whom it receives from (ascending)
// and its weights.
struct Edges {
  std::vector<int> send_to, recv_from;
  double self_weight = 1.0;
  std::vector<double> weights;
};

std::vector<int> Sorted(std::vector<int> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

// The ring: neighbours rank +- 1, weights 1/3 each (n = 2: one neighbour, 1/2).
Edges Ring(int rank, int n) {
  Edges e;
  std::vector<int> peers;
  if (n > 1) peers = Sorted({(rank + 1) % n, (rank + n - 1) % n});
  e.send_to = e.recv_from = peers;
  e.self_weight = 1.0 / static_cast<double>(peers.size() + 1);
  e.weights.assign(peers.size(), e.self_weight);
  return e;
}

// A directed shift by `hop`: send to rank + hop, receive from rank - hop, 1/2
// each (nothing when hop is a multiple of n).
Edges Shift(int rank, int n, int hop) {
  Edges e;
  if (hop % n == 0) return e;
  e.send_to = {(rank + hop) % n};
  e.recv_from = {((rank - hop) % n + n) % n};
  e.self_weight = 0.5;
  e.weights = {0.5};
  return e;
}

double Input(int dtype, int rank, int64_t i, int salt) {
  return ctu::SmallValue(dtype, rank, i, salt) / 4.0;
}

// Rank `rank`'s expected mix, and the scale of its terms (for the tolerance).
double Mixed(const Edges& e, int dtype, int rank, int64_t i, int salt, double* scale) {
  double want = e.self_weight * Input(dtype, rank, i, salt);
  *scale = std::fabs(want);
  for (size_t k = 0; k < e.recv_from.size(); ++k) {
    const double term = e.weights[k] * Input(dtype, e.recv_from[k], i, salt);
    want += term;
    *scale += std::fabs(term);
  }
  return want;
}

int Submit(const std::string& name, Tensor& in, void* out, const Edges& e, Handle* h) {
  return braid_neighbor_allreduce_async(name.c_str(), in.desc(), out, e.send_to.data(),
                                        static_cast<int>(e.send_to.size()), e.recv_from.data(),
                                        static_cast<int>(e.recv_from.size()), e.self_weight,
                                        e.weights.data(), h->out());
}

::testing::AssertionResult CheckMixed(const Tensor& out, const Edges& e, int dtype, int rank,
                                      int salt) {
  const double tol = 4.0 * ctu::RoundingTolerance(dtype) + 1e-15;
  for (int64_t i = 0; i < out.count(); ++i) {
    double scale = 0.0;
    const double want = Mixed(e, dtype, rank, i, salt, &scale);
    const double got = ctu::LoadElem(dtype, out.data(), i);
    if (std::fabs(got - want) > tol * scale + 1e-30) {
      return ::testing::AssertionFailure() << ctu::DtypeName(dtype) << " [" << i << "] got " << got
                                           << " want " << want << " (rank " << rank << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

TEST_F(Neighbor, RingMixesEveryFloatTypeAndSize) {
  const Edges e = Ring(rank_, size_);
  for (int dtype : ctu::FloatDtypes()) {
    for (int64_t count : {int64_t{0}, int64_t{1}, int64_t{13}, int64_t{100003}}) {
      for (bool in_place : {false, true}) {
        Tensor in(dtype, {count}), out(dtype, {count});
        in.Fill([&](int64_t i) { return Input(dtype, rank_, i, 1); });
        Handle h;
        void* dst = in_place ? in.data() : out.data();
        ASSERT_EQ(Submit(ctu::UniqueName("ring"), in, dst, e, &h), BRAID_OK) << braid_last_error();
        ASSERT_EQ(h.Wait(), BRAID_OK) << h.Error();
        EXPECT_TRUE(CheckMixed(in_place ? in : out, e, dtype, rank_, 1))
            << "count " << count << (in_place ? " in place" : "");
      }
    }
  }
}

// The exchange returns each neighbour's tensor bit for bit, block k from
// recv_from[k], for every dtype.
TEST_F(Neighbor, ExchangeReturnsTheNeighboursTensors) {
  for (int dtype : ctu::AllDtypes()) {
    const Edges e = size_ > 2 ? Ring(rank_, size_) : Shift(rank_, size_, 1);
    Tensor in(dtype, {3, 5});
    in.Fill([&](int64_t i) { return ctu::SmallValue(dtype, rank_, i, 2); });
    Handle h;
    const std::string name = ctu::UniqueName("exchange");
    ASSERT_EQ(braid_neighbor_exchange_async(name.c_str(), in.desc(), e.send_to.data(),
                                            static_cast<int>(e.send_to.size()), e.recv_from.data(),
                                            static_cast<int>(e.recv_from.size()), h.out()),
              BRAID_OK)
        << braid_last_error();
    ASSERT_EQ(h.Wait(), BRAID_OK) << h.Error();
    const void* data = nullptr;
    int ndim = 0;
    const int64_t* shape = nullptr;
    ASSERT_EQ(braid_handle_output(h.get(), &data, &ndim, &shape), BRAID_OK) << braid_last_error();
    ASSERT_EQ(ndim, 3);
    EXPECT_EQ(shape[0], static_cast<int64_t>(e.recv_from.size()));
    EXPECT_EQ(shape[1], 3);
    EXPECT_EQ(shape[2], 5);
    for (size_t k = 0; k < e.recv_from.size(); ++k) {
      const char* block = static_cast<const char*>(data) + k * 15 * ctu::DtypeSize(dtype);
      EXPECT_TRUE(ctu::MatchesValues(
          dtype, block, 15,
          [&](int64_t i) { return ctu::SmallValue(dtype, e.recv_from[k], i, 2); }))
          << "block from rank " << e.recv_from[k];
    }
  }
}

// Tensors with different graphs, submitted together: each gets its own mix.
TEST_F(Neighbor, TensorsWithDifferentGraphsFuse) {
  const std::vector<Edges> graphs = {Ring(rank_, size_), Shift(rank_, size_, 1),
                                     Shift(rank_, size_, 2), Ring(rank_, size_)};
  std::vector<Tensor> ins;
  for (size_t t = 0; t < graphs.size(); ++t)
    ins.emplace_back(BRAID_FLOAT64, std::vector<int64_t>{int64_t(7 + t)});
  std::vector<Handle> handles(graphs.size());
  for (size_t t = 0; t < graphs.size(); ++t) {
    ins[t].Fill([&](int64_t i) { return Input(BRAID_FLOAT64, rank_, i, int(t)); });
    ASSERT_EQ(Submit(ctu::UniqueName("fused"), ins[t], ins[t].data(), graphs[t], &handles[t]),
              BRAID_OK)
        << braid_last_error();
  }
  for (size_t t = 0; t < graphs.size(); ++t) {
    ASSERT_EQ(handles[t].Wait(), BRAID_OK) << handles[t].Error();
    EXPECT_TRUE(CheckMixed(ins[t], graphs[t], BRAID_FLOAT64, rank_, int(t))) << "tensor " << t;
  }
}

// One name, a different graph every call (one-peer exponential: hop 2^(t mod
// log2 n)), then the same graph again (the cached response).
TEST_F(Neighbor, TimeVaryingGraphUnderOneName) {
  int rounds = 1;
  while ((1 << rounds) < size_) ++rounds;
  const std::string name = ctu::UniqueName("one_peer");
  for (int t = 0; t < 3 * rounds + 2; ++t) {
    const Edges e = Shift(rank_, size_, 1 << (t % rounds));
    Tensor x(BRAID_FLOAT32, {33});
    x.Fill([&](int64_t i) { return Input(BRAID_FLOAT32, rank_, i, t); });
    Handle h;
    ASSERT_EQ(Submit(name, x, x.data(), e, &h), BRAID_OK) << braid_last_error();
    ASSERT_EQ(h.Wait(), BRAID_OK) << h.Error();
    EXPECT_TRUE(CheckMixed(x, e, BRAID_FLOAT32, rank_, t)) << "step " << t;
  }
}

TEST_F(Neighbor, StatsCountBytesPerPeer) {
  ASSERT_EQ(braid_reset_stats(), BRAID_OK);
  const Edges e = Ring(rank_, size_);
  Tensor x(BRAID_FLOAT32, {10});
  Handle h;
  ASSERT_EQ(Submit(ctu::UniqueName("stats"), x, x.data(), e, &h), BRAID_OK);
  ASSERT_EQ(h.Wait(), BRAID_OK) << h.Error();
  std::vector<int64_t> sent(size_);
  ASSERT_EQ(braid_neighbor_stats(sent.data(), size_), BRAID_OK);
  for (int p = 0; p < size_; ++p) {
    const bool neighbour = std::find(e.send_to.begin(), e.send_to.end(), p) != e.send_to.end();
    EXPECT_EQ(sent[p], neighbour ? 40 : 0) << "peer " << p;
  }
  int64_t count = 0, bytes = 0;
  ASSERT_EQ(braid_stats(BRAID_NEIGHBOR_ALLREDUCE, &count, &bytes), BRAID_OK);
  EXPECT_EQ(count, 1);
  EXPECT_EQ(bytes, 40);
}

int RunMix(const std::string& name, Tensor& x, const Edges& e, std::string* error) {
  Handle h;
  int rc = Submit(name, x, x.data(), e, &h);
  if (rc != BRAID_OK) {
    *error = braid_last_error();
    return rc;
  }
  rc = h.Wait();
  *error = h.Error();
  return rc;
}

TEST_F(Neighbor, ListsWrongOnThisRankAreRefusedAtOnce) {
  Tensor x(BRAID_FLOAT32, {4}), ints(BRAID_INT32, {4});
  std::string error;
  Edges self;
  self.recv_from = {rank_};
  self.weights = {0.5};
  EXPECT_EQ(RunMix("self", x, self, &error), BRAID_ERR_INVALID_ARGUMENT);
  EXPECT_NE(error.find("itself"), std::string::npos) << error;
  Edges outside;
  outside.send_to = {size_};
  EXPECT_EQ(RunMix("outside", x, outside, &error), BRAID_ERR_INVALID_ARGUMENT);
  EXPECT_NE(error.find("not in [0, " + std::to_string(size_) + ")"), std::string::npos) << error;
  Edges repeated;
  repeated.send_to = {0, 0};
  EXPECT_EQ(RunMix("repeated", x, repeated, &error), BRAID_ERR_INVALID_ARGUMENT);
  EXPECT_NE(error.find("ascending"), std::string::npos) << error;
  EXPECT_EQ(RunMix("ints", ints, Edges(), &error), BRAID_ERR_INVALID_ARGUMENT);
  EXPECT_NE(error.find("float16, bfloat16, float32 or float64"), std::string::npos) << error;
  Edges nan_weight = Ring(rank_, size_);
  nan_weight.self_weight = std::nan("");
  EXPECT_EQ(RunMix("nan", x, nan_weight, &error), BRAID_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(ctu::EngineUsable());
}

// Every rank sends to rank + 1 but receives from rank + 1 as well: at n >= 3 no
// edge matches, at n = 2 both do (so rank 1 leaves recv_from empty there).
TEST_F(Neighbor, InconsistentGraphFailsOnEveryRank) {
  if (size_ < 2) GTEST_SKIP() << "a graph needs two ranks";
  Edges e;
  e.send_to = {(rank_ + 1) % size_};
  if (size_ > 2 || rank_ == 0) e.recv_from = {(rank_ + 1) % size_};
  e.weights.assign(e.recv_from.size(), 0.5);
  Tensor x(BRAID_FLOAT32, {6});
  std::string error;
  EXPECT_EQ(RunMix(ctu::UniqueName("inconsistent"), x, e, &error), BRAID_ERR_MISMATCH);
  EXPECT_NE(error.find("Inconsistent neighbour graph"), std::string::npos) << error;
  EXPECT_NE(error.find("does not receive from rank"), std::string::npos) << error;
  EXPECT_TRUE(ctu::EngineUsable());
}

TEST_F(Neighbor, ShapesThatDifferAcrossRanksFailEverywhere) {
  if (size_ < 2) GTEST_SKIP() << "needs two ranks";
  Tensor x(BRAID_FLOAT32, {rank_ == 0 ? 5 : 6});
  std::string error;
  EXPECT_EQ(RunMix(ctu::UniqueName("shapes"), x, Ring(rank_, size_), &error), BRAID_ERR_MISMATCH);
  EXPECT_NE(error.find("Mismatched shapes"), std::string::npos) << error;
  EXPECT_TRUE(ctu::EngineUsable());
}

}  // namespace
