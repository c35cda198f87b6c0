// The built-in static and one-peer graphs and the Graph lookups. Base-(k+1) is in
// base_graph.cc, user matrices in user_graph.cc, the spectral gap in spectral.cc.
#include "ops/gossip/graph.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "ops/gossip/topology.h"

namespace braid::gossip {

void NormalizeRow(std::vector<Neighbor>* row) {
  std::sort(row->begin(), row->end(),
            [](const Neighbor& a, const Neighbor& b) { return a.rank < b.rank; });
  std::vector<Neighbor> merged;
  for (const Neighbor& e : *row) {
    if (!merged.empty() && merged.back().rank == e.rank) {
      merged.back().weight += e.weight;
    } else {
      merged.push_back(e);
    }
  }
  merged.erase(std::remove_if(merged.begin(), merged.end(),
                              [](const Neighbor& e) { return e.weight == 0.0; }),
               merged.end());
  *row = std::move(merged);
}

TableTopology::TableTopology(std::vector<SparseRows> phases) : rows_(std::move(phases)) {
  columns_.resize(rows_.size());
  for (size_t p = 0; p < rows_.size(); ++p) {
    columns_[p].assign(rows_[p].size(), {});
    for (size_t i = 0; i < rows_[p].size(); ++i) {
      for (const Neighbor& e : rows_[p][i]) {
        columns_[p][e.rank].push_back({static_cast<int>(i), e.weight});
      }
    }
  }
}

void TableTopology::Row(int rank, int64_t phase, std::vector<Neighbor>* row) const {
  *row = rows_[phase][rank];
}

void TableTopology::Column(int rank, int64_t phase, std::vector<Neighbor>* column) const {
  *column = columns_[phase][rank];  // filled in row order, so already sorted
}

void CompleteTopology::Row(int /*rank*/, int64_t /*phase*/, std::vector<Neighbor>* row) const {
  row->resize(size_);
  for (int j = 0; j < size_; ++j) (*row)[j] = {j, 1.0 / size_};
}

void CompleteTopology::Column(int rank, int64_t phase, std::vector<Neighbor>* column) const {
  Row(rank, phase, column);  // J/n is symmetric
}

SparseRows CirculantRows(int size, const std::vector<int64_t>& offsets, double weight) {
  // Distinct offsets mod n: for small n, +d and -d (or d and 0) may coincide.
  std::vector<int64_t> distinct;
  for (int64_t d : offsets) {
    int64_t r = ((d % size) + size) % size;
    if (std::find(distinct.begin(), distinct.end(), r) == distinct.end()) distinct.push_back(r);
  }
  SparseRows rows(size);
  for (int i = 0; i < size; ++i) {
    for (int64_t d : distinct) rows[i].push_back({static_cast<int>((i + d) % size), weight});
    NormalizeRow(&rows[i]);
  }
  return rows;
}

namespace {

Status CheckSize(int size, const char* graph) {
  if (size < 1) {
    return InvalidArgument(std::string(graph) + " graph: world size must be >= 1, got " +
                           std::to_string(size));
  }
  return Status::OK();
}

// Distinct offsets d mod n (d != 0) of a neighbour set closed under negation.
size_t DistinctNonzero(int size, const std::vector<int64_t>& offsets) {
  std::vector<int64_t> seen;
  for (int64_t d : offsets) {
    int64_t r = ((d % size) + size) % size;
    if (r != 0 && std::find(seen.begin(), seen.end(), r) == seen.end()) seen.push_back(r);
  }
  return seen.size();
}

// The most square factorization n = rows x cols, rows <= cols.
void SquareFactors(int n, int* rows, int* cols) {
  int r = static_cast<int>(std::sqrt(static_cast<double>(n)));
  while (r > 1 && n % r != 0) --r;
  if (r < 1) r = 1;
  *rows = r;
  *cols = n / r;
}

// Offsets i -> neighbour in one torus dimension of extent `extent`: +-1, merged.
std::vector<int> DimensionSteps(int extent) {
  if (extent <= 1) return {};
  if (extent == 2) return {1};
  return {1, extent - 1};
}

SparseRows TorusRows(int rows, int cols) {
  const int n = rows * cols;
  const std::vector<int> row_steps = DimensionSteps(rows);
  const std::vector<int> col_steps = DimensionSteps(cols);
  // Every rank has the same number of distinct neighbours (the torus is
  // vertex-transitive and undirected), so uniform weights give a symmetric,
  // doubly stochastic W.
  const double weight = 1.0 / static_cast<double>(1 + row_steps.size() + col_steps.size());
  SparseRows w(n);
  for (int i = 0; i < n; ++i) {
    const int r = i / cols, c = i % cols;
    w[i].push_back({i, weight});
    for (int s : row_steps) w[i].push_back({((r + s) % rows) * cols + c, weight});
    for (int s : col_steps) w[i].push_back({r * cols + (c + s) % cols, weight});
    NormalizeRow(&w[i]);
  }
  return w;
}

// ceil(log2 n): the period of the one-peer exponential graph (0 for n = 1).
int CeilLog2(int n) {
  int p = 0;
  while ((int64_t{1} << p) < n) ++p;
  return p;
}

}  // namespace

Graph::Graph(GraphKind kind, int size, std::string description, bool exact,
             std::shared_ptr<const Topology> topology)
    : kind_(kind),
      size_(size),
      description_(std::move(description)),
      exact_consensus_(exact),
      topology_(std::move(topology)) {}

int64_t Graph::period() const {
  return topology_ ? topology_->period() : 0;
}

// A circulant graph with uniform mixing weights over self and the distinct
// neighbours the offsets give (offsets closed under negation: doubly stochastic).
// W = J/n when every other rank is a neighbour.
Graph Graph::UniformCirculant(GraphKind kind, int size, const std::vector<int64_t>& offsets,
                              const std::string& description) {
  const size_t degree = DistinctNonzero(size, offsets);
  const double weight = 1.0 / static_cast<double>(1 + degree);
  auto topology = std::make_shared<TableTopology>(
      std::vector<SparseRows>{CirculantRows(size, offsets, weight)});
  return Graph(kind, size, description, degree + 1 == static_cast<size_t>(size),
               std::move(topology));
}

Status Graph::Ring(int size, Graph* out) {
  BRAID_RETURN_IF_ERROR(CheckSize(size, "ring"));
  // n = 2: both sides are the same neighbour, so 1/2 each; n = 1: self only.
  *out = UniformCirculant(GraphKind::kRing, size, {0, 1, -1}, "ring " + std::to_string(size));
  return Status::OK();
}

Status Graph::Torus(int size, Graph* out) {
  BRAID_RETURN_IF_ERROR(CheckSize(size, "torus"));
  int rows = 1, cols = 1;
  SquareFactors(size, &rows, &cols);
  auto topology = std::make_shared<TableTopology>(std::vector<SparseRows>{TorusRows(rows, cols)});
  // W = J/n only when the torus is a ring of at most 3 ranks.
  *out =
      Graph(GraphKind::kTorus, size, "torus " + std::to_string(rows) + "x" + std::to_string(cols),
            size <= 3, std::move(topology));
  return Status::OK();
}

Status Graph::Exponential(int size, Graph* out) {
  BRAID_RETURN_IF_ERROR(CheckSize(size, "exponential"));
  // Offsets +-2^j for 2^j < n. The set is closed under negation, so the graph is
  // an undirected circulant: every rank has the same distinct neighbours count,
  // in-neighbours equal out-neighbours, and uniform weights are doubly stochastic.
  std::vector<int64_t> offsets = {0};
  for (int64_t d = 1; d < size; d *= 2) {
    offsets.push_back(d);
    offsets.push_back(-d);
  }
  // W = J/n when every other rank is a neighbour (n <= 5 and n = 7).
  *out = UniformCirculant(GraphKind::kExponential, size, offsets,
                          "exponential " + std::to_string(size));
  return Status::OK();
}

Status Graph::OnePeerExponential(int size, Graph* out) {
  BRAID_RETURN_IF_ERROR(CheckSize(size, "one-peer exponential"));
  // At step t rank i receives from i - 2^s and sends to i + 2^s, s = t mod
  // ceil(log2 n), weights 1/2. For n a power of two the product over one period
  // is J/n; otherwise it is not (the gap of the product is reported instead).
  const int period = std::max(1, CeilLog2(size));
  std::vector<SparseRows> phases;
  for (int s = 0; s < period; ++s) {
    if (size == 1) {
      phases.push_back(CirculantRows(size, {0}, 1.0));
    } else {
      phases.push_back(CirculantRows(size, {0, -(int64_t{1} << s)}, 0.5));
    }
  }
  const bool power_of_two = (size & (size - 1)) == 0;
  *out = Graph(GraphKind::kOnePeerExponential, size, "one-peer exponential " + std::to_string(size),
               power_of_two, std::make_shared<TableTopology>(std::move(phases)));
  return Status::OK();
}

Status Graph::Complete(int size, Graph* out) {
  BRAID_RETURN_IF_ERROR(CheckSize(size, "complete"));
  *out = Graph(GraphKind::kComplete, size, "complete " + std::to_string(size), true,
               std::make_shared<CompleteTopology>(size));
  return Status::OK();
}

Status Graph::Base(int size, int max_degree, Graph* out) {
  BRAID_RETURN_IF_ERROR(CheckSize(size, "Base-(k+1)"));
  std::vector<SparseRows> phases;
  std::string description;
  BRAID_RETURN_IF_ERROR(BuildBaseGraph(size, max_degree, &phases, &description));
  *out = Graph(GraphKind::kBase, size, description, true,
               std::make_shared<TableTopology>(std::move(phases)));
  return Status::OK();
}

Status Graph::FromMatrices(int size, std::vector<std::vector<double>> matrices, Graph* out) {
  BRAID_RETURN_IF_ERROR(CheckSize(size, "user mixing matrix"));
  if (matrices.empty()) return InvalidArgument("user mixing matrix: no matrix given");
  std::vector<SparseRows> phases;
  for (size_t p = 0; p < matrices.size(); ++p) {
    const std::string which = matrices.size() == 1 ? "W" : "W_" + std::to_string(p);
    BRAID_RETURN_IF_ERROR(ValidateMixingMatrix(matrices[p], size, which));
    SparseRows rows(size);
    for (int i = 0; i < size; ++i) {
      for (int j = 0; j < size; ++j) {
        const double v = matrices[p][static_cast<size_t>(i) * size + j];
        if (v != 0.0) rows[i].push_back({j, v});
      }
    }
    phases.push_back(std::move(rows));
  }
  *out =
      Graph(GraphKind::kMatrix, size, "matrix " + std::to_string(size) + "x" + std::to_string(size),
            false, std::make_shared<TableTopology>(std::move(phases)));
  return Status::OK();
}

Status Graph::FromMatrix(int size, std::vector<double> matrix, Graph* out) {
  std::vector<std::vector<double>> one;
  one.push_back(std::move(matrix));
  return FromMatrices(size, std::move(one), out);
}

Status Graph::Make(GraphKind kind, int size, Graph* out) {
  switch (kind) {
    case GraphKind::kRing:
      return Ring(size, out);
    case GraphKind::kTorus:
      return Torus(size, out);
    case GraphKind::kExponential:
      return Exponential(size, out);
    case GraphKind::kOnePeerExponential:
      return OnePeerExponential(size, out);
    case GraphKind::kComplete:
      return Complete(size, out);
    case GraphKind::kBase:
      return Base(size, 1, out);
    case GraphKind::kMatrix:
      break;
  }
  return InvalidArgument("Graph::Make: a matrix graph needs its matrix (Graph::FromMatrix)");
}

Status Graph::Weights(int rank, int64_t step, MixingWeights* out) const {
  if (!topology_) return InvalidArgument("gossip graph: empty graph");
  if (rank < 0 || rank >= size_) {
    return InvalidArgument("gossip graph " + description_ + ": rank " + std::to_string(rank) +
                           " out of range [0, " + std::to_string(size_) + ")");
  }
  if (step < 0) {
    return InvalidArgument("gossip graph " + description_ + ": step must be >= 0, got " +
                           std::to_string(step));
  }
  const int64_t phase = step % topology_->period();
  std::vector<Neighbor> row, column;
  topology_->Row(rank, phase, &row);
  topology_->Column(rank, phase, &column);
  *out = MixingWeights();
  out->self_weight = 0.0;
  for (const Neighbor& e : row) {
    if (e.rank == rank) {
      out->self_weight = e.weight;
    } else {
      out->recv_from.push_back(e);
    }
  }
  for (const Neighbor& e : column) {
    if (e.rank != rank) out->send_to.push_back(e);
  }
  return Status::OK();
}

const char* GraphKindName(GraphKind kind) {
  switch (kind) {
    case GraphKind::kRing:
      return "ring";
    case GraphKind::kTorus:
      return "torus";
    case GraphKind::kExponential:
      return "exponential";
    case GraphKind::kOnePeerExponential:
      return "one_peer_exponential";
    case GraphKind::kComplete:
      return "complete";
    case GraphKind::kBase:
      return "base";
    case GraphKind::kMatrix:
      return "matrix";
  }
  return "unknown";
}

Status ParseGraphKind(const std::string& name, GraphKind* kind) {
  for (GraphKind k : {GraphKind::kRing, GraphKind::kTorus, GraphKind::kExponential,
                      GraphKind::kOnePeerExponential, GraphKind::kComplete, GraphKind::kBase,
                      GraphKind::kMatrix}) {
    if (name == GraphKindName(k)) {
      *kind = k;
      return Status::OK();
    }
  }
  return InvalidArgument("unknown gossip graph '" + name +
                         "' (ring, torus, exponential, one_peer_exponential, complete, base, "
                         "matrix)");
}

}  // namespace braid::gossip
