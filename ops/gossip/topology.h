// The inside of a Graph: the rows and columns of each mixing matrix W_t, and the
// builders of the built-in graphs. Not part of the public API (see graph.h).
//
// Threading: immutable after construction; const methods may run concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ops/gossip/graph.h"

namespace braid::gossip {

// A sparse W: rows[i] holds (j, W[i][j]) for every nonzero entry, self included.
using SparseRows = std::vector<std::vector<Neighbor>>;

class Topology {
 public:
  virtual ~Topology() = default;
  virtual int64_t period() const = 0;
  // The nonzero entries W_phase[rank][j] (self included), in rank order.
  virtual void Row(int rank, int64_t phase, std::vector<Neighbor>* row) const = 0;
  // The nonzero entries W_phase[j][rank] (self included), in rank order.
  virtual void Column(int rank, int64_t phase, std::vector<Neighbor>* column) const = 0;
};

// Each W_t stored as sparse rows, with the columns kept alongside (the transpose),
// so that both the receive and the send side are a lookup.
class TableTopology : public Topology {
 public:
  explicit TableTopology(std::vector<SparseRows> phases);
  int64_t period() const override { return static_cast<int64_t>(rows_.size()); }
  void Row(int rank, int64_t phase, std::vector<Neighbor>* row) const override;
  void Column(int rank, int64_t phase, std::vector<Neighbor>* column) const override;

 private:
  std::vector<SparseRows> rows_;
  std::vector<SparseRows> columns_;
};

// W = J/n, computed on demand (n^2 stored entries would be wasteful at large n).
class CompleteTopology : public Topology {
 public:
  explicit CompleteTopology(int size) : size_(size) {}
  int64_t period() const override { return 1; }
  void Row(int rank, int64_t phase, std::vector<Neighbor>* row) const override;
  void Column(int rank, int64_t phase, std::vector<Neighbor>* column) const override;

 private:
  int size_;
};

// Merges duplicate ranks (adding their weights), drops zeros and sorts the row.
void NormalizeRow(std::vector<Neighbor>* row);

// A circulant W: W[i][(i + d) mod n] = weight for each offset d (self: d = 0).
// Offsets equal mod n are merged, so neighbours are never double counted.
SparseRows CirculantRows(int size, const std::vector<int64_t>& offsets, double weight);

// Base-(k+1) graph (base_graph.cc): the phases W_0 .. W_(P-1) and a description.
Status BuildBaseGraph(int size, int max_degree, std::vector<SparseRows>* phases,
                      std::string* description);

// Checks one user matrix (user_graph.cc); `which` names it in errors.
Status ValidateMixingMatrix(const std::vector<double>& w, int size, const std::string& which);

}  // namespace braid::gossip
