// Decentralized momentum SGD through the C API at every world size, against
// references written here from the equations of Yu, Jin, Yang (ICML 2019,
// Algorithm 2) and the graph definitions (docs/gossip_graphs.md): every process
// simulates every rank with the dense W_t built below and checks its own x and u
// (float64, 1e-12). Also: mixing keeps the average over the ranks; on the complete
// graph the method is synchronous momentum SGD on allreduce-averaged gradients;
// the one-peer exponential graph reaches the exact average in log2(n) mixing steps
// when n is a power of two; one neighbour allreduce per step, an allreduce every
// K-th; and the errors, the same on every rank where they are collective.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "tests/mpi/c_api_test_util.h"

namespace {

using Matrix = std::vector<std::vector<double>>;
using Values = std::vector<std::vector<double>>;  // [rank][element]

constexpr size_t kDim = 7;  // elements per rank: two tensors of 5 and 2

// Uniform weights over i and the distinct ranks in `peers` (a set, i excluded).
void Uniform(Matrix* w, int i, std::vector<int> peers) {
  std::sort(peers.begin(), peers.end());
  peers.erase(std::unique(peers.begin(), peers.end()), peers.end());
  peers.erase(std::remove(peers.begin(), peers.end(), i), peers.end());
  const double weight = 1.0 / static_cast<double>(peers.size() + 1);
  (*w)[i][i] += weight;
  for (int j : peers) (*w)[i][j] += weight;
}

// W_t of the graphs, from their definitions (docs/gossip_graphs.md): the ring
// i +- 1; the torus on the most square r x c grid (r the largest divisor of n
// up to sqrt(n)), rank i at row i / c, column i % c, neighbours up, down, left,
// right; the exponential graph i +- 2^j for 2^j < n; all with uniform weights over
// self and the distinct neighbours.
Matrix DenseW(const std::string& kind, int n, int64_t t) {
  Matrix w(n, std::vector<double>(n, 0.0));
  if (n == 1) return {{1.0}};
  auto mod = [n](int j) { return ((j % n) + n) % n; };
  auto add = [&](int i, int j, double v) { w[i][mod(j)] += v; };
  int rows = static_cast<int>(std::sqrt(static_cast<double>(n)));
  while (n % rows != 0) --rows;
  const int cols = n / rows;
  for (int i = 0; i < n; ++i) {
    if (kind == "complete") {
      for (int j = 0; j < n; ++j) add(i, j, 1.0 / n);
    } else if (kind == "ring") {
      Uniform(&w, i, {mod(i - 1), mod(i + 1)});
    } else if (kind == "torus") {
      const int r = i / cols, c = i % cols;
      Uniform(&w, i,
              {((r + 1) % rows) * cols + c, ((r + rows - 1) % rows) * cols + c,
               r * cols + (c + 1) % cols, r * cols + (c + cols - 1) % cols});
    } else if (kind == "exponential") {
      std::vector<int> peers;
      for (int d = 1; d < n; d *= 2) peers.push_back(mod(i + d)), peers.push_back(mod(i - d));
      Uniform(&w, i, peers);
    } else if (kind == "one_peer_exponential") {
      int rounds = 0;
      while ((1 << rounds) < n) ++rounds;
      add(i, i, 0.5), add(i, i - (1 << (t % rounds)), 0.5);
    } else if (kind == "matrices") {  // the user list below
      if (t % 2 == 0) {
        add(i, i, 0.5), add(i, i + 1, 0.5);  // a directed shift: not symmetric
      } else {
        add(i, i, 0.25);
        for (int j = 0; j < n; ++j) add(i, j, 0.75 / n);
      }
    }
  }
  return w;
}

// The user matrices of "matrices", row-major, one after the other.
std::vector<double> UserMatrices(int n) {
  std::vector<double> flat;
  for (int t = 0; t < 2; ++t)
    for (const auto& row : DenseW("matrices", n, t))
      flat.insert(flat.end(), row.begin(), row.end());
  return flat;
}

struct Hyper {
  double beta = 0.9;
  bool nesterov = false;
  bool mix_momentum = true;
  int64_t average_period = 0;
  double weight_decay = 0.0;
};

// Rank i's gradient: of 0.5 * a_i * ||x - b_i||^2, plus a term of the step.
double Grad(int rank, int t, size_t e, double x) {
  const double a = 0.5 + 0.25 * rank, b = std::sin(1.0 + rank + 0.5 * static_cast<double>(e));
  return a * (x - b) + 0.1 * std::cos(static_cast<double>(t) + 3.0 * rank + e);
}
double Start(int rank, size_t e) {
  return 0.2 * rank - 0.1 * static_cast<double>(e % 3) + 0.05 * static_cast<double>(e);
}

Values Mixed(const Matrix& w, const Values& v) {
  Values out(v.size(), std::vector<double>(kDim, 0.0));
  for (size_t i = 0; i < v.size(); ++i)
    for (size_t j = 0; j < v.size(); ++j)
      for (size_t e = 0; e < kDim; ++e) out[i][e] += w[i][j] * v[j][e];
  return out;
}
Values Averaged(const Values& v) {
  std::vector<double> mean(kDim, 0.0);
  for (const auto& r : v)
    for (size_t e = 0; e < kDim; ++e) mean[e] += r[e] / static_cast<double>(v.size());
  return Values(v.size(), mean);
}

// Every rank's x and u under Algorithm 2.
struct Reference {
  Values x, u;
  explicit Reference(int n)
      : x(n, std::vector<double>(kDim)), u(n, std::vector<double>(kDim, 0.0)) {
    for (int i = 0; i < n; ++i)
      for (size_t e = 0; e < kDim; ++e) x[i][e] = Start(i, e);
  }
  void Step(int t, double lr, const Hyper& h, const Matrix& w) {
    for (size_t i = 0; i < x.size(); ++i) {
      for (size_t e = 0; e < kDim; ++e) {
        const double g = Grad(static_cast<int>(i), t, e, x[i][e]) + h.weight_decay * x[i][e];
        u[i][e] = h.beta * u[i][e] + g;                                 // u~
        x[i][e] -= lr * (h.nesterov ? h.beta * u[i][e] + g : u[i][e]);  // x~
      }
    }
    if (h.average_period > 0 && (t + 1) % h.average_period == 0) {
      x = Averaged(x), u = Averaged(u);
      return;
    }
    x = Mixed(w, x);
    if (h.mix_momentum) u = Mixed(w, u);
  }
};

// One rank's x, g and u, each as two float64 tensors of 5 and 2 elements.
struct Buffers {
  std::vector<double> x = std::vector<double>(kDim), g = x, u = x;
  int64_t sizes[2] = {5, 2};
  explicit Buffers(int rank) {
    for (size_t e = 0; e < kDim; ++e) x[e] = Start(rank, e);
  }
  std::vector<braid_tensor_t> Desc(std::vector<double>& v) {
    return {{v.data(), BRAID_FLOAT64, 1, &sizes[0], BRAID_DEVICE_CPU, nullptr},
            {v.data() + 5, BRAID_FLOAT64, 1, &sizes[1], BRAID_DEVICE_CPU, nullptr}};
  }
  int Register(braid_gossip_t op, bool grads = true, bool momentum = true) {
    auto xd = Desc(x), gd = Desc(g), ud = Desc(u);
    return braid_gossip_set_buffers(op, xd.data(), grads ? gd.data() : nullptr,
                                    momentum ? ud.data() : nullptr, 2);
  }
};

// Owns a braid_gossip_t.
struct Op {
  braid_gossip_t op = nullptr;
  ~Op() { braid_gossip_free(op); }
};

// `kind` must outlive the options (they point at it).
braid_gossip_options_t OptionsFor(const char* kind, const Hyper& h,
                                  const std::vector<double>& matrices) {
  braid_gossip_options_t o;
  braid_gossip_options_init(&o);
  o.topology = kind;
  if (std::string(kind) == "matrices") o.matrices = matrices.data(), o.num_matrices = 2;
  o.momentum = h.beta;
  o.nesterov = h.nesterov;
  o.mix_momentum = h.mix_momentum;
  o.average_period = h.average_period;
  o.weight_decay = h.weight_decay;
  return o;
}

class Gossip : public ctu::BraidTest {
 protected:
  // Runs `steps` steps and checks this rank's x and u against the reference.
  void RunAgainstReference(const std::string& kind, const Hyper& h, int steps) {
    SCOPED_TRACE(kind);
    const std::vector<double> matrices = UserMatrices(size_);
    const braid_gossip_options_t o = OptionsFor(kind.c_str(), h, matrices);
    Op op;
    const std::string name = ctu::UniqueName("dsgd");
    ASSERT_EQ(braid_gossip_create(name.c_str(), &o, &op.op), BRAID_OK) << braid_last_error();
    Buffers b(rank_);
    ASSERT_EQ(b.Register(op.op), BRAID_OK) << braid_last_error();
    Reference ref(size_);
    const double lr = 0.1;
    for (int t = 0; t < steps; ++t) {
      for (size_t e = 0; e < kDim; ++e) b.g[e] = Grad(rank_, t, e, b.x[e]);
      ASSERT_EQ(braid_gossip_step(op.op, lr), BRAID_OK) << braid_last_error();
      ref.Step(t, lr, h, DenseW(kind, size_, t));
      for (size_t e = 0; e < kDim; ++e) {
        ASSERT_NEAR(b.x[e], ref.x[rank_][e], 1e-12) << "step " << t << " element " << e;
        ASSERT_NEAR(b.u[e], ref.u[rank_][e], 1e-12) << "step " << t << " element " << e;
      }
    }
    int64_t step = -1;
    ASSERT_EQ(braid_gossip_get_step(op.op, &step), BRAID_OK);
    EXPECT_EQ(step, steps);
  }

  std::vector<double> MeanOverRanks(const std::vector<double>& v) {
    std::vector<double> sum(v.size());
    MPI_Allreduce(v.data(), sum.data(), static_cast<int>(v.size()), MPI_DOUBLE, MPI_SUM,
                  MPI_COMM_WORLD);
    for (double& s : sum) s /= size_;
    return sum;
  }
};

TEST_F(Gossip, HeavyBallAndNesterovMatchAlgorithm2) {
  Hyper h;
  RunAgainstReference("ring", h, 10);  // Option I
  h.nesterov = true;                   // Option II
  h.weight_decay = 0.01;
  RunAgainstReference("ring", h, 10);
  RunAgainstReference("exponential", h, 6);
  if (size_ <= 4) RunAgainstReference("torus", h, 6);  // the W_t written above
}

TEST_F(Gossip, TimeVaryingGraphsAndLocalMomentum) {
  Hyper h;
  h.mix_momentum = false;  // u stays local
  RunAgainstReference("one_peer_exponential", h, 9);
  h.mix_momentum = true;
  RunAgainstReference("one_peer_exponential", h, 9);
  RunAgainstReference("matrices", h, 9);
}

TEST_F(Gossip, DPsgdAndPeriodicAverage) {
  Hyper h;
  h.beta = 0.0;  // D-PSGD
  RunAgainstReference("ring", h, 6);
  h.beta = 0.9;
  h.average_period = 3;
  RunAgainstReference("ring", h, 9);
  h.mix_momentum = false;
  RunAgainstReference("one_peer_exponential", h, 9);
}

// One neighbour allreduce per step, x and u in one message to the one peer, and an
// allreduce instead every K-th step.
TEST_F(Gossip, OneCollectivePerStep) {
  Hyper h;
  h.average_period = 3;
  const braid_gossip_options_t o = OptionsFor("one_peer_exponential", h, {});
  Op op;
  ASSERT_EQ(braid_gossip_create(ctu::UniqueName("dsgd").c_str(), &o, &op.op), BRAID_OK)
      << braid_last_error();
  Buffers b(rank_);
  ASSERT_EQ(b.Register(op.op), BRAID_OK) << braid_last_error();
  ASSERT_EQ(braid_reset_stats(), BRAID_OK);
  for (int t = 0; t < 6; ++t) ASSERT_EQ(braid_gossip_step(op.op, 0.1), BRAID_OK);
  int64_t averages = -1, mixes = -1;
  ASSERT_EQ(braid_stats(BRAID_ALLREDUCE, &averages, nullptr), BRAID_OK);
  ASSERT_EQ(braid_stats(BRAID_NEIGHBOR_ALLREDUCE, &mixes, nullptr), BRAID_OK) << braid_last_error();
  std::vector<int64_t> sent(static_cast<size_t>(size_), -1);
  ASSERT_EQ(braid_neighbor_stats(sent.data(), size_), BRAID_OK) << braid_last_error();
  int64_t total = 0;
  for (int64_t s : sent) total += s;
  // Nothing to mix with at n = 1; else 4 mixing steps of 2 * kDim doubles to one peer.
  EXPECT_EQ(total, size_ == 1 ? 0 : 4 * 2 * static_cast<int64_t>(kDim * sizeof(double)));
  EXPECT_EQ(mixes, size_ == 1 ? 0 : 4);
  EXPECT_EQ(averages, size_ == 1 ? 0 : 2);
}

// Mixing alone (and a step with zero gradients and no momentum) keeps the average
// over the ranks: W's columns sum to 1.
TEST_F(Gossip, MixingPreservesTheAverage) {
  for (const std::string kind : {"ring", "one_peer_exponential", "torus"}) {
    Hyper h;
    h.beta = 0.0;
    const braid_gossip_options_t o = OptionsFor(kind.c_str(), h, {});
    Op op;
    ASSERT_EQ(braid_gossip_create(ctu::UniqueName("mix").c_str(), &o, &op.op), BRAID_OK);
    Buffers b(rank_);
    for (size_t e = 0; e < kDim; ++e) b.x[e] = std::cos(3.0 * rank_ + e) * (rank_ + 1);
    const std::vector<double> mean = MeanOverRanks(b.x);
    ASSERT_EQ(b.Register(op.op, true, false), BRAID_OK) << braid_last_error();
    double before = -1, after = -1;
    ASSERT_EQ(braid_gossip_consensus_distance(op.op, &before), BRAID_OK) << braid_last_error();
    for (int t = 0; t < 4; ++t) {
      ASSERT_EQ(t % 2 ? braid_gossip_mix(op.op) : braid_gossip_step(op.op, 0.1), BRAID_OK)
          << braid_last_error();
      const std::vector<double> now = MeanOverRanks(b.x);
      for (size_t e = 0; e < kDim; ++e) ASSERT_NEAR(now[e], mean[e], 1e-12) << kind << " " << t;
    }
    ASSERT_EQ(braid_gossip_consensus_distance(op.op, &after), BRAID_OK);
    EXPECT_LE(after, before + 1e-15) << kind;
    ASSERT_EQ(braid_gossip_consensus(op.op), BRAID_OK) << braid_last_error();
    for (size_t e = 0; e < kDim; ++e) EXPECT_NEAR(b.x[e], mean[e], 1e-12) << kind;
    ASSERT_EQ(braid_gossip_consensus_distance(op.op, &after), BRAID_OK);
    EXPECT_NEAR(after, 0.0, 1e-12) << kind;
  }
}

// W = J/n: every rank holds avg(x~) and avg(u~) after each step, which is momentum
// SGD on the allreduce-averaged gradient.
TEST_F(Gossip, CompleteGraphIsSynchronousMomentumSgd) {
  for (bool nesterov : {false, true}) {
    Hyper h;
    h.nesterov = nesterov;
    const braid_gossip_options_t o = OptionsFor("complete", h, {});
    Op op;
    ASSERT_EQ(braid_gossip_create(ctu::UniqueName("sync").c_str(), &o, &op.op), BRAID_OK);
    Buffers b(rank_);
    for (size_t e = 0; e < kDim; ++e) b.x[e] = Start(0, e);  // one starting point
    ASSERT_EQ(b.Register(op.op), BRAID_OK);
    std::vector<double> x = b.x, u(kDim, 0.0), g(kDim);
    for (int t = 0; t < 8; ++t) {
      for (size_t e = 0; e < kDim; ++e) b.g[e] = g[e] = Grad(rank_, t, e, x[e]);
      const std::vector<double> gbar = MeanOverRanks(g);
      for (size_t e = 0; e < kDim; ++e) {
        u[e] = h.beta * u[e] + gbar[e];
        x[e] -= 0.1 * (nesterov ? h.beta * u[e] + gbar[e] : u[e]);
      }
      ASSERT_EQ(braid_gossip_step(op.op, 0.1), BRAID_OK) << braid_last_error();
      for (size_t e = 0; e < kDim; ++e) {
        ASSERT_NEAR(b.x[e], x[e], 1e-12) << "step " << t;
        ASSERT_NEAR(b.u[e], u[e], 1e-12) << "step " << t;
      }
    }
  }
}

// For n a power of two the product of the log2(n) one-peer matrices is J/n.
TEST_F(Gossip, OnePeerExponentialReachesExactConsensus) {
  if (size_ & (size_ - 1)) GTEST_SKIP() << "needs a power of two ranks (has " << size_ << ")";
  Hyper h;
  const braid_gossip_options_t o = OptionsFor("one_peer_exponential", h, {});
  Op op;
  ASSERT_EQ(braid_gossip_create(ctu::UniqueName("peer").c_str(), &o, &op.op), BRAID_OK);
  Buffers b(rank_);
  for (size_t e = 0; e < kDim; ++e) b.x[e] = (rank_ + 1.0) * (rank_ + 1.0) + e, b.u[e] = -rank_;
  const std::vector<double> mean = MeanOverRanks(b.x), mean_u = MeanOverRanks(b.u);
  ASSERT_EQ(b.Register(op.op, false, true), BRAID_OK);
  int rounds = 0;
  while ((1 << rounds) < size_) ++rounds;
  for (int t = 0; t < rounds; ++t) ASSERT_EQ(braid_gossip_mix(op.op), BRAID_OK);
  for (size_t e = 0; e < kDim; ++e) {
    EXPECT_NEAR(b.x[e], mean[e], 1e-12);
    EXPECT_NEAR(b.u[e], mean_u[e], 1e-12);
  }
  double d = -1;
  ASSERT_EQ(braid_gossip_consensus_distance(op.op, &d), BRAID_OK);
  EXPECT_NEAR(d, 0.0, 1e-12);
}

TEST_F(Gossip, LocalErrors) {
  Op op;
  braid_gossip_options_t o;
  braid_gossip_options_init(&o);
  o.topology = "hypercube";
  EXPECT_EQ(braid_gossip_create("bad", &o, &op.op), BRAID_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(braid_last_error()).find("hypercube"), std::string::npos)
      << braid_last_error();
  std::vector<double> w(static_cast<size_t>(size_) * size_, 1.0);  // rows sum to n
  o.matrices = w.data();
  o.num_matrices = 1;
  EXPECT_EQ(braid_gossip_create("bad", &o, &op.op),
            size_ == 1 ? BRAID_OK : BRAID_ERR_INVALID_ARGUMENT);
  braid_gossip_free(op.op);
  op.op = nullptr;
  o.matrices = nullptr;
  o.topology = "ring";
  o.momentum = 1.5;
  EXPECT_EQ(braid_gossip_create("bad", &o, &op.op), BRAID_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(braid_gossip_step(nullptr, 0.1), BRAID_ERR_INVALID_ARGUMENT);
  ASSERT_EQ(braid_gossip_create("local_errors", nullptr, &op.op), BRAID_OK);
  Buffers b(rank_);
  int64_t five = 5, four = 4;
  braid_tensor_t x = {b.x.data(), BRAID_FLOAT64, 1, &five, BRAID_DEVICE_CPU, nullptr};
  braid_tensor_t g = {b.g.data(), BRAID_FLOAT64, 1, &four, BRAID_DEVICE_CPU, nullptr};
  EXPECT_EQ(braid_gossip_set_buffers(op.op, &x, &g, nullptr, 1), BRAID_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(braid_last_error()).find("grads buffer 0 has 4"), std::string::npos)
      << braid_last_error();
  braid_tensor_t f = {b.g.data(), BRAID_FLOAT32, 1, &five, BRAID_DEVICE_CPU, nullptr};
  EXPECT_EQ(braid_gossip_set_buffers(op.op, &x, &f, nullptr, 1), BRAID_ERR_INVALID_ARGUMENT);
  ASSERT_EQ(b.Register(op.op, true, false), BRAID_OK);
  EXPECT_EQ(braid_gossip_step(op.op, 0.1), BRAID_ERR_INVALID_ARGUMENT);  // momentum 0.9
  EXPECT_EQ(braid_gossip_set_step(op.op, -1), BRAID_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(ctu::EngineUsable());
}

// Buffers of another size on one rank, or ranks at other steps: the same error on
// every rank, and the engine still works.
TEST_F(Gossip, CollectiveErrorsOnEveryRank) {
  CTU_REQUIRE_RANKS(2);
  Op op;
  ASSERT_EQ(braid_gossip_create(ctu::UniqueName("errors").c_str(), nullptr, &op.op), BRAID_OK);
  Buffers b(rank_);
  b.sizes[1] = rank_ == 0 ? 1 : 2;
  ASSERT_EQ(b.Register(op.op), BRAID_OK);
  EXPECT_EQ(braid_gossip_step(op.op, 0.1), BRAID_ERR_MISMATCH) << braid_last_error();
  b.sizes[1] = 2;
  ASSERT_EQ(b.Register(op.op), BRAID_OK);
  ASSERT_EQ(braid_gossip_set_step(op.op, rank_ == 0 ? 7 : 3), BRAID_OK);
  const std::vector<double> x = b.x;
  EXPECT_EQ(braid_gossip_consensus(op.op), BRAID_ERR_MISMATCH) << braid_last_error();
  EXPECT_NE(std::string(braid_last_error()).find("not at the same step"), std::string::npos);
  EXPECT_EQ(b.x, x);  // left as it was
  EXPECT_TRUE(ctu::EngineUsable());
}

}  // namespace
