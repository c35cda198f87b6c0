// The graphs of decentralized training and their mixing weights. A gossip step
// replaces every rank's value by a weighted average of its own and its neighbours'
// values: x_i <- sum_j W[i][j] x_j, with W a doubly stochastic mixing matrix (rows
// and columns sum to 1, so the average over the ranks is preserved). Rank i
// receives from the neighbours j with W[i][j] > 0 and sends to the neighbours j
// with W[j][i] > 0; W[i][i] is its self weight.
//
// A time-varying graph (one-peer exponential, Base-(k+1), a list of user matrices)
// uses W_(t mod period) at step t. Every graph here works for every world size
// n >= 1; docs/gossip_graphs.md lists what each n gets and the spectral gaps.
//
// Pure computation: nothing here communicates.
//
// Threading: a Graph is immutable once built; copies share it, and any number of
// threads may call its const methods at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace braid::gossip {

// One neighbour of a rank and the mixing weight on that edge.
struct Neighbor {
  int rank = 0;
  double weight = 0.0;
};

// Rank i's part of W_t.
struct MixingWeights {
  double self_weight = 1.0;  // W[i][i]
  // The neighbours j that mix i's value in, with weight W[j][i]: i sends to them.
  std::vector<Neighbor> send_to;
  // The neighbours j whose values i mixes in, with weight W[i][j]: i receives from
  // them. out = self_weight * x_i + sum over recv_from of weight * x_j.
  std::vector<Neighbor> recv_from;
};

enum class GraphKind {
  kRing,                // 1/3 each (n = 2: 1/2 each; n = 1: self only)
  kTorus,               // 2-D torus, most square r x c; 1/5 each when r, c >= 3
  kExponential,         // static, peers i +- 2^j, uniform over distinct neighbours
  kOnePeerExponential,  // time-varying, peer i + 2^(t mod ceil(log2 n)), 1/2 each
  kComplete,            // W = J/n (the exact average)
  kBase,                // Base-(k+1), time-varying, exact consensus for any n
  kMatrix,              // user-given W (or a periodic list of them)
};

// "ring", "torus", "exponential", "one_peer_exponential", "complete", "base",
// "matrix".
const char* GraphKindName(GraphKind kind);
Status ParseGraphKind(const std::string& name, GraphKind* kind);

class Topology;  // topology.h: the rows and columns of each W_t

class Graph {
 public:
  Graph() = default;  // no graph: size() == 0

  static Status Ring(int size, Graph* out);
  static Status Torus(int size, Graph* out);
  static Status Exponential(int size, Graph* out);
  static Status OnePeerExponential(int size, Graph* out);
  static Status Complete(int size, Graph* out);
  // Base-(k+1) graph with maximum degree `max_degree` (k >= 1; k = 1: one peer).
  static Status Base(int size, int max_degree, Graph* out);
  // A built-in graph by kind (kBase with k = 1); kMatrix is refused.
  static Status Make(GraphKind kind, int size, Graph* out);
  // User-given W: `matrix` is row-major size x size, W[i][j] = matrix[i * size + j].
  // Checked: finite, nonnegative, every row and column sums to 1 within 1e-12. The
  // nonzero off-diagonal entries are the edges.
  static Status FromMatrix(int size, std::vector<double> matrix, Graph* out);
  // A periodic list of such matrices: W_t = matrices[t mod matrices.size()].
  static Status FromMatrices(int size, std::vector<std::vector<double>> matrices, Graph* out);

  int size() const { return size_; }
  // Number of distinct W_t (1 for a static graph).
  int64_t period() const;
  bool time_varying() const { return period() > 1; }
  GraphKind kind() const { return kind_; }
  // Kind and shape, e.g. "torus 3x4", "base-2 (k=1)".
  const std::string& description() const { return description_; }
  // Whether the product of W_t over one period is exactly J/n (finite-time
  // consensus): complete, one-peer exponential for n a power of two, Base-(k+1).
  bool exact_consensus() const { return exact_consensus_; }

  // Rank `rank`'s mixing weights at step `step` (>= 0), neighbours in rank order.
  Status Weights(int rank, int64_t step, MixingWeights* out) const;

 private:
  // Uniform weights over self and the distinct neighbours that `offsets` give.
  static Graph UniformCirculant(GraphKind kind, int size, const std::vector<int64_t>& offsets,
                                const std::string& description);
  Graph(GraphKind kind, int size, std::string description, bool exact,
        std::shared_ptr<const Topology> topology);

  GraphKind kind_ = GraphKind::kComplete;
  int size_ = 0;
  std::string description_;
  bool exact_consensus_ = false;
  std::shared_ptr<const Topology> topology_;
};

// W_t as a dense row-major n x n matrix (n = graph.size()), for tests and the
// spectral gap.
std::vector<double> DenseMatrix(const Graph& graph, int64_t step);

// The product over one period, W_(P-1) ... W_1 W_0 (what P steps of mixing apply).
std::vector<double> PeriodProduct(const Graph& graph);

// The spectral gap of a doubly stochastic n x n W: 1 - sigma_2, where sigma_2 =
// ||W - J/n||_2, the largest singular value of W off the consensus direction (the
// factor by which one mixing step at least shrinks the consensus error). For a
// symmetric W (every static built-in graph) sigma_2 is the second largest
// eigenvalue modulus |lambda_2|, so the gap is 1 - |lambda_2|; for a non-symmetric
// W, sigma_2 >= |lambda_2|. Computed densely by one-sided Jacobi (absolute error
// about 1e-14 for n <= 64; cost O(n^3) per sweep, meant for n up to a few hundred).
double SpectralGap(const std::vector<double>& w, int n);

// The gap of W for a static graph, of the period product for a time-varying one.
double SpectralGap(const Graph& graph);

// The singular values of a dense row-major n x n matrix, largest first.
std::vector<double> SingularValues(const std::vector<double>& a, int n);

}  // namespace braid::gossip
