// The gossip graphs and their mixing weights (ops/gossip/graph.h), against
// references written here from the definitions: the expected W of each built-in
// graph by its formula, the eigenvalues of circulant and torus W in closed form,
// and consensus simulated by mixing through each rank's send/receive lists.
//
// The spectral gap table of docs/gossip_graphs.md is printed by
//   build/tests/unit/test_gossip_graphs --gtest_also_run_disabled_tests \
//       --gtest_filter='*PrintSpectralGapTable'
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "ops/gossip/graph.h"

namespace braid::gossip {
namespace {

using Matrix = std::vector<double>;  // row-major n x n
constexpr double kPi = 3.14159265358979323846;

int Mod(int64_t a, int n) {
  return static_cast<int>(((a % n) + n) % n);
}

// --- references from the definitions ---------------------------------------

// W[i][j] = 1 / (1 + |D|) when (j - i) mod n is in D u {0}: a uniform circulant.
Matrix UniformCirculant(int n, const std::set<int>& offsets) {
  std::set<int> d = {0};
  for (int o : offsets) d.insert(Mod(o, n));
  Matrix w(n * n, 0.0);
  for (int i = 0; i < n; ++i) {
    for (int o : d) w[i * n + Mod(i + o, n)] = 1.0 / d.size();
  }
  return w;
}

std::set<int> ExponentialOffsets(int n) {
  std::set<int> d;
  for (int p = 1; p < n; p *= 2) d.insert({p, -p});
  return d;
}

void TorusShape(int n, int* r, int* c) {
  *r = 1;
  for (int a = 1; a * a <= n; ++a) {
    if (n % a == 0) *r = a;
  }
  *c = n / *r;
}

Matrix ExpectedTorus(int n) {
  int r = 0, c = 0;
  TorusShape(n, &r, &c);
  const int degree = std::min(r - 1, 2) + std::min(c - 1, 2);
  Matrix w(n * n, 0.0);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) {
      const int dr = Mod(j / c - i / c, r), dc = Mod(j % c - i % c, c);
      const bool row_step = dc == 0 && (dr == 1 || dr == r - 1);
      const bool col_step = dr == 0 && (dc == 1 || dc == c - 1);
      if (i == j || row_step || col_step) w[i * n + j] = 1.0 / (1 + degree);
    }
  }
  return w;
}

Matrix ExpectedOnePeer(int n, int64_t t) {
  int period = 0;
  while ((1 << period) < n) ++period;
  Matrix w(n * n, 0.0);
  for (int i = 0; i < n; ++i) {
    if (n == 1) {
      w[0] = 1.0;
      continue;
    }
    w[i * n + i] = 0.5;
    w[i * n + Mod(i - (1 << (t % period)), n)] = 0.5;
  }
  return w;
}

Matrix Multiply(const Matrix& a, const Matrix& b, int n) {
  Matrix c(n * n, 0.0);
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < n; ++k)
      for (int j = 0; j < n; ++j) c[i * n + j] += a[i * n + k] * b[k * n + j];
  return c;
}

double MaxDistanceToAverage(const Matrix& w, int n) {
  double worst = 0.0;
  for (double v : w) worst = std::max(worst, std::fabs(v - 1.0 / n));
  return worst;
}

// One gossip step as the ranks would run it: each rank mixes what it receives.
std::vector<double> Mix(const Graph& g, const std::vector<double>& x, int64_t t) {
  std::vector<double> y(x.size());
  for (int i = 0; i < g.size(); ++i) {
    MixingWeights m;
    EXPECT_TRUE(g.Weights(i, t, &m).ok());
    y[i] = m.self_weight * x[i];
    for (const Neighbor& e : m.recv_from) y[i] += e.weight * x[e.rank];
  }
  return y;
}

double Mean(const std::vector<double>& x) {
  double s = 0.0;
  for (double v : x) s += v;
  return s / x.size();
}

double ConsensusError(const std::vector<double>& x) {
  const double mean = Mean(x);
  double s = 0.0;
  for (double v : x) s += (v - mean) * (v - mean);
  return std::sqrt(s);
}

std::vector<double> RandomVector(int n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<double> x(n);
  for (double& v : x) v = u(rng);
  return x;
}

std::vector<Graph> AllGraphs(int n) {
  std::vector<Graph> graphs;
  for (GraphKind kind : {GraphKind::kRing, GraphKind::kTorus, GraphKind::kExponential,
                         GraphKind::kOnePeerExponential, GraphKind::kComplete}) {
    Graph g;
    EXPECT_TRUE(Graph::Make(kind, n, &g).ok());
    graphs.push_back(g);
  }
  for (int k = 1; k <= 3; ++k) {
    Graph g;
    EXPECT_TRUE(Graph::Base(n, k, &g).ok());
    graphs.push_back(g);
  }
  return graphs;
}

// --- the built-in graphs against their formulas -------------------------------

TEST(GossipGraphs, DenseMatricesMatchTheDefinitions) {
  for (int n = 1; n <= 16; ++n) {
    Graph ring, torus, exponential, one_peer, complete;
    ASSERT_TRUE(Graph::Ring(n, &ring).ok());
    ASSERT_TRUE(Graph::Torus(n, &torus).ok());
    ASSERT_TRUE(Graph::Exponential(n, &exponential).ok());
    ASSERT_TRUE(Graph::OnePeerExponential(n, &one_peer).ok());
    ASSERT_TRUE(Graph::Complete(n, &complete).ok());
    EXPECT_EQ(DenseMatrix(ring, 0), UniformCirculant(n, {1, -1})) << n;
    EXPECT_EQ(DenseMatrix(torus, 0), ExpectedTorus(n)) << n;
    EXPECT_EQ(DenseMatrix(exponential, 0), UniformCirculant(n, ExponentialOffsets(n))) << n;
    EXPECT_EQ(DenseMatrix(complete, 0), Matrix(n * n, 1.0 / n)) << n;
    for (int64_t t = 0; t < 9; ++t) {
      EXPECT_EQ(DenseMatrix(one_peer, t), ExpectedOnePeer(n, t)) << n << " t=" << t;
    }
  }
  // The small cases the weights must not double count.
  Graph g;
  ASSERT_TRUE(Graph::Ring(2, &g).ok());
  EXPECT_EQ(DenseMatrix(g, 0), Matrix({0.5, 0.5, 0.5, 0.5}));
  ASSERT_TRUE(Graph::Ring(1, &g).ok());
  EXPECT_EQ(DenseMatrix(g, 0), Matrix({1.0}));
  ASSERT_TRUE(Graph::Torus(12, &g).ok());
  EXPECT_EQ(g.description(), "torus 3x4");
  ASSERT_TRUE(Graph::Torus(9, &g).ok());
  EXPECT_EQ(DenseMatrix(g, 0)[0], 0.2);  // 3x3: four neighbours, 1/5 each
}

TEST(GossipGraphs, DoublyStochasticAndNonnegative) {
  for (int n = 1; n <= 16; ++n) {
    for (const Graph& g : AllGraphs(n)) {
      for (int64_t t = 0; t < 2 * g.period() + 1; ++t) {
        const Matrix w = DenseMatrix(g, t);
        for (int i = 0; i < n; ++i) {
          double row = 0.0, column = 0.0;
          for (int j = 0; j < n; ++j) {
            EXPECT_GE(w[i * n + j], 0.0) << g.description();
            row += w[i * n + j];
            column += w[j * n + i];
          }
          EXPECT_NEAR(row, 1.0, 1e-12) << g.description() << " t=" << t << " row " << i;
          EXPECT_NEAR(column, 1.0, 1e-12) << g.description() << " t=" << t << " column " << i;
        }
      }
    }
  }
}

TEST(GossipGraphs, SendAndReceiveListsAgreeAcrossRanks) {
  for (int n = 1; n <= 16; ++n) {
    for (const Graph& g : AllGraphs(n)) {
      for (int64_t t = 0; t < g.period(); ++t) {
        std::vector<MixingWeights> m(n);
        for (int i = 0; i < n; ++i) ASSERT_TRUE(g.Weights(i, t, &m[i]).ok());
        for (int i = 0; i < n; ++i) {
          EXPECT_GE(m[i].self_weight, 0.0);
          for (const Neighbor& to : m[i].send_to) {
            ASSERT_NE(to.rank, i);
            const auto& recv = m[to.rank].recv_from;
            auto it = std::find_if(recv.begin(), recv.end(),
                                   [&](const Neighbor& e) { return e.rank == i; });
            ASSERT_TRUE(it != recv.end()) << g.description() << ": " << i << " -> " << to.rank;
            EXPECT_EQ(it->weight, to.weight) << g.description();
          }
          size_t received_from_i = 0;  // j receives from i  =>  i sends to j
          for (int j = 0; j < n; ++j) {
            for (const Neighbor& e : m[j].recv_from) received_from_i += e.rank == i;
          }
          EXPECT_EQ(received_from_i, m[i].send_to.size()) << g.description();
        }
      }
    }
  }
}

TEST(GossipGraphs, MixingPreservesTheAverage) {
  for (int n = 1; n <= 16; ++n) {
    for (const Graph& g : AllGraphs(n)) {
      std::vector<double> x = RandomVector(n, 7 + n);
      const double mean = Mean(x);
      for (int64_t t = 0; t < 2 * g.period() + 3; ++t) {
        x = Mix(g, x, t);
        EXPECT_NEAR(Mean(x), mean, 1e-15) << g.description() << " t=" << t;
      }
    }
  }
}

// --- spectral gap ---------------------------------------------------------------

// Second largest eigenvalue modulus of a symmetric uniform circulant, in closed
// form: lambda_k = sum over offsets d of cos(2 pi k d / n) / |D u {0}|.
double CirculantSlem(int n, const std::set<int>& offsets) {
  std::set<int> d = {0};
  for (int o : offsets) d.insert(Mod(o, n));
  double slem = 0.0;
  for (int k = 1; k < n; ++k) {
    double lambda = 0.0;
    for (int o : d) lambda += std::cos(2 * kPi * k * o / n) / d.size();
    slem = std::max(slem, std::fabs(lambda));
  }
  return slem;
}

double TorusSlem(int n) {
  int r = 0, c = 0;
  TorusShape(n, &r, &c);
  std::set<int> dr = {0}, dc = {0};
  if (r > 1) dr.insert({1, r - 1});
  if (c > 1) dc.insert({1, c - 1});
  const double weight = 1.0 / (dr.size() + dc.size() - 1);
  double slem = 0.0;
  for (int a = 0; a < r; ++a) {
    for (int b = 0; b < c; ++b) {
      if (a == 0 && b == 0) continue;
      double lambda = -weight;  // self counted in both dimensions
      for (int o : dr) lambda += weight * std::cos(2 * kPi * a * o / r);
      for (int o : dc) lambda += weight * std::cos(2 * kPi * b * o / c);
      slem = std::max(slem, std::fabs(lambda));
    }
  }
  return slem;
}

TEST(GossipGraphs, SpectralGapMatchesClosedFormEigenvalues) {
  for (int n = 2; n <= 16; ++n) {
    Graph ring, torus, exponential, complete;
    ASSERT_TRUE(Graph::Ring(n, &ring).ok());
    ASSERT_TRUE(Graph::Torus(n, &torus).ok());
    ASSERT_TRUE(Graph::Exponential(n, &exponential).ok());
    ASSERT_TRUE(Graph::Complete(n, &complete).ok());
    EXPECT_NEAR(SpectralGap(ring), 1 - CirculantSlem(n, {1, -1}), 1e-12) << n;
    EXPECT_NEAR(SpectralGap(exponential), 1 - CirculantSlem(n, ExponentialOffsets(n)), 1e-12);
    EXPECT_NEAR(SpectralGap(torus), 1 - TorusSlem(n), 1e-12) << n;
    EXPECT_NEAR(SpectralGap(complete), 1.0, 1e-14) << n;
  }
  // Singular values of a known matrix: diag(3, -2, 0.5) rotated in the (0, 1) plane.
  const double c = 0.6, s = 0.8;
  const Matrix a = {3 * c, -3 * s, 0, 2 * s, 2 * c, 0, 0, 0, 0.5};
  const std::vector<double> sigma = SingularValues(a, 3);
  EXPECT_NEAR(sigma[0], 3.0, 1e-14);
  EXPECT_NEAR(sigma[1], 2.0, 1e-14);
  EXPECT_NEAR(sigma[2], 0.5, 1e-14);
}

// The consensus error shrinks by at most sigma_2 = 1 - gap per step (per period for
// a time-varying graph), and a random start decays no faster than sigma_2^t by more
// than a constant factor: sigma_2 is the rate, not merely a bound.
TEST(GossipGraphs, ConsensusErrorDecaysAtTheSpectralRate) {
  for (int n = 2; n <= 16; ++n) {
    for (const Graph& g : AllGraphs(n)) {
      const double sigma = 1.0 - SpectralGap(g);
      std::vector<double> x = RandomVector(n, 100 + n);
      const double e0 = ConsensusError(x);
      double bound = e0;
      int64_t t = 0;
      for (int period = 1; period <= 30; ++period) {
        for (int64_t s = 0; s < g.period(); ++s) x = Mix(g, x, t++);
        bound *= sigma;
        const double e = ConsensusError(x);
        EXPECT_LE(e, bound * (1 + 1e-9) + 1e-13) << g.description() << " period " << period;
        if (bound > 1e-8 * e0 && g.kind() != GraphKind::kOnePeerExponential) {
          EXPECT_GE(e, 1e-3 * bound) << g.description() << " period " << period;
        }
      }
      if (g.exact_consensus()) {
        EXPECT_LT(sigma, 1e-12) << g.description();
      }
    }
  }
}

// --- finite-time consensus ------------------------------------------------------

TEST(GossipGraphs, OnePeerExponentialReachesExactConsensusInLog2NSteps) {
  for (int n : {2, 4, 8, 16}) {
    Graph g;
    ASSERT_TRUE(Graph::OnePeerExponential(n, &g).ok());
    const int steps = static_cast<int>(std::log2(n));
    ASSERT_EQ(g.period(), steps);
    EXPECT_TRUE(g.exact_consensus());
    Matrix product(n * n, 0.0);
    for (int i = 0; i < n; ++i) product[i * n + i] = 1.0;
    for (int t = 0; t < steps; ++t) product = Multiply(ExpectedOnePeer(n, t), product, n);
    EXPECT_EQ(MaxDistanceToAverage(product, n), 0.0) << n;  // dyadic: exact
    std::vector<double> x = RandomVector(n, 3);
    const double mean = Mean(x);
    for (int t = 0; t < steps; ++t) {
      EXPECT_GT(ConsensusError(x), 1e-3) << "consensus too early at n=" << n;
      x = Mix(g, x, t);
    }
    for (double v : x) EXPECT_NEAR(v, mean, 1e-15) << n;
  }
  for (int n : {3, 5, 6, 7, 12}) {  // not a power of two: no exact consensus
    Graph g;
    ASSERT_TRUE(Graph::OnePeerExponential(n, &g).ok());
    EXPECT_FALSE(g.exact_consensus());
    EXPECT_GT(MaxDistanceToAverage(PeriodProduct(g), n), 1e-3) << n;
    EXPECT_GT(SpectralGap(g), 0.0) << n;
  }
}

TEST(GossipGraphs, BaseGraphReachesExactConsensusForEveryN) {
  for (int k = 1; k <= 4; ++k) {
    for (int n = 1; n <= 40; ++n) {
      Graph g;
      ASSERT_TRUE(Graph::Base(n, k, &g).ok());
      EXPECT_TRUE(g.exact_consensus());
      EXPECT_LT(MaxDistanceToAverage(PeriodProduct(g), n), 1e-14) << g.description() << " n=" << n;
      for (int64_t t = 0; t < g.period(); ++t) {
        for (int i = 0; i < n; ++i) {
          MixingWeights m;
          ASSERT_TRUE(g.Weights(i, t, &m).ok());
          EXPECT_LE(m.recv_from.size(), static_cast<size_t>(k)) << g.description() << " n=" << n;
          EXPECT_LE(m.send_to.size(), static_cast<size_t>(k)) << g.description() << " n=" << n;
        }
      }
    }
  }
  Graph g;
  ASSERT_TRUE(Graph::Base(8, 1, &g).ok());
  EXPECT_EQ(g.period(), 3);  // n = 2^3: the one-peer hypercube
  ASSERT_TRUE(Graph::Base(6, 1, &g).ok());
  EXPECT_EQ(g.description(), "base-2 (k=1), groups 4+2");
  EXPECT_FALSE(Graph::Base(6, 0, &g).ok());
}

TEST(GossipGraphs, CompleteGraphAveragesInOneStep) {
  for (int n = 1; n <= 16; ++n) {
    Graph g;
    ASSERT_TRUE(Graph::Complete(n, &g).ok());
    std::vector<double> x = RandomVector(n, 11);
    const double mean = Mean(x);
    for (double v : Mix(g, x, 0)) EXPECT_NEAR(v, mean, 1e-15);
  }
}

// --- user-given W and argument errors --------------------------------------------

TEST(GossipGraphs, UserMatrixGivesListsFromItsSparsity) {
  // A lazy directed cycle on 3 ranks: i keeps 3/4 and receives 1/4 from i - 1.
  const Matrix w = {0.75, 0, 0.25, 0.25, 0.75, 0, 0, 0.25, 0.75};
  Graph g;
  ASSERT_TRUE(Graph::FromMatrix(3, w, &g).ok());
  EXPECT_EQ(DenseMatrix(g, 5), w);
  MixingWeights m;
  ASSERT_TRUE(g.Weights(1, 0, &m).ok());
  EXPECT_EQ(m.self_weight, 0.75);
  ASSERT_EQ(m.recv_from.size(), 1u);
  EXPECT_EQ(m.recv_from[0].rank, 0);
  ASSERT_EQ(m.send_to.size(), 1u);
  EXPECT_EQ(m.send_to[0].rank, 2);
  EXPECT_EQ(m.send_to[0].weight, 0.25);
  ASSERT_TRUE(Graph::FromMatrices(2, {{1, 0, 0, 1}, {0.5, 0.5, 0.5, 0.5}}, &g).ok());
  EXPECT_EQ(g.period(), 2);
  EXPECT_EQ(MaxDistanceToAverage(PeriodProduct(g), 2), 0.0);
}

std::string MatrixError(int n, Matrix w) {
  Graph g;
  Status s = Graph::FromMatrix(n, std::move(w), &g);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  return s.message();
}

TEST(GossipGraphs, UserMatrixErrorsNameTheViolation) {
  EXPECT_NE(MatrixError(2, {1, 0, 0}).find("expected 2 x 2 = 4 entries"), std::string::npos);
  EXPECT_NE(MatrixError(3, {1, 0, 0, 0, 1.5, -0.5, 0, -0.5, 1.5}).find("entry (1, 2)"),
            std::string::npos);
  EXPECT_NE(MatrixError(2, {1, 0, 0, NAN}).find("(1, 1)"), std::string::npos);
  EXPECT_NE(MatrixError(3, {1, 0, 0, 0, 0.5, 0.5, 0, 0.5, 0.4}).find("row 2 sums to 0.9"),
            std::string::npos);
  EXPECT_NE(MatrixError(2, {1, 0, 1, 0}).find("column 0 sums to 2"), std::string::npos);
  EXPECT_NE(MatrixError(2, {0.5, 0.5, 0.5, 0.5 + 1e-9}).find("row 1"), std::string::npos);
  Graph g;  // within the tolerance
  EXPECT_TRUE(Graph::FromMatrix(2, {0.5, 0.5, 0.5 - 1e-13, 0.5 + 1e-13}, &g).ok());
  Status s = Graph::FromMatrices(2, {{1, 0, 0, 1}, {1, 0, 0, 2}}, &g);
  EXPECT_NE(s.message().find("user mixing matrix W_1"), std::string::npos) << s.message();
  EXPECT_FALSE(Graph::FromMatrices(2, {}, &g).ok());
}

TEST(GossipGraphs, ArgumentErrorsAndNames) {
  Graph g;
  EXPECT_FALSE(Graph::Ring(0, &g).ok());
  EXPECT_FALSE(Graph::Make(GraphKind::kMatrix, 4, &g).ok());
  ASSERT_TRUE(Graph::Ring(4, &g).ok());
  MixingWeights m;
  EXPECT_FALSE(g.Weights(4, 0, &m).ok());
  EXPECT_FALSE(g.Weights(0, -1, &m).ok());
  EXPECT_FALSE(Graph().Weights(0, 0, &m).ok());
  for (const char* name :
       {"ring", "torus", "exponential", "one_peer_exponential", "complete", "base", "matrix"}) {
    GraphKind kind;
    ASSERT_TRUE(ParseGraphKind(name, &kind).ok()) << name;
    EXPECT_STREQ(GraphKindName(kind), name);
  }
  GraphKind kind;
  EXPECT_NE(ParseGraphKind("star", &kind).message().find("unknown gossip graph 'star'"),
            std::string::npos);
}

// --- the docs table -------------------------------------------------------------

TEST(GossipGraphs, DISABLED_PrintSpectralGapTable) {
  std::printf(
      "| n | ring | torus | exponential | one-peer exp. (period P) | base-2 (P) | base-3 (P) "
      "| complete |\n|---|---|---|---|---|---|---|---|\n");
  for (int n = 2; n <= 16; ++n) {
    Graph ring, torus, exponential, one_peer, base2, base3, complete;
    ASSERT_TRUE(Graph::Ring(n, &ring).ok());
    ASSERT_TRUE(Graph::Torus(n, &torus).ok());
    ASSERT_TRUE(Graph::Exponential(n, &exponential).ok());
    ASSERT_TRUE(Graph::OnePeerExponential(n, &one_peer).ok());
    ASSERT_TRUE(Graph::Base(n, 1, &base2).ok());
    ASSERT_TRUE(Graph::Base(n, 2, &base3).ok());
    ASSERT_TRUE(Graph::Complete(n, &complete).ok());
    std::printf(
        "| %d | %.4f | %.4f (%s) | %.4f | %.4f (%lld) | %.4f (%lld) | %.4f (%lld) | %.4f |\n", n,
        SpectralGap(ring), SpectralGap(torus), torus.description().substr(6).c_str(),
        SpectralGap(exponential), SpectralGap(one_peer), static_cast<long long>(one_peer.period()),
        SpectralGap(base2), static_cast<long long>(base2.period()), SpectralGap(base3),
        static_cast<long long>(base3.period()), SpectralGap(complete));
  }
}

}  // namespace
}  // namespace braid::gossip
