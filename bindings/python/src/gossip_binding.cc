#include "gossip_binding.h"

#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "decentralized_binding.h"
#include "errors.h"
#include "ops/gossip/graph.h"

namespace py = pybind11;

namespace braid::python {
namespace {

using gossip::Graph;

// A named graph of `size` ranks ("base" takes `max_degree`).
Graph MakeGraph(const std::string& kind, int size, int max_degree) {
  gossip::GraphKind parsed;
  ThrowIfError(gossip::ParseGraphKind(kind, &parsed));
  Graph g;
  if (parsed == gossip::GraphKind::kBase) {
    ThrowIfError(Graph::Base(size, max_degree, &g));
  } else {
    ThrowIfError(Graph::Make(parsed, size, &g));
  }
  return g;
}

// A user-given W: one n x n matrix (rows of lists), or a list of them (periodic).
Graph MatrixGraph(const std::vector<std::vector<std::vector<double>>>& matrices) {
  if (matrices.empty()) ThrowStatus(InvalidArgument("the graph needs at least one matrix"));
  const int n = static_cast<int>(matrices[0].size());
  std::vector<std::vector<double>> flat;
  for (const auto& m : matrices) {
    std::vector<double> rows;
    for (const auto& row : m) {
      if (static_cast<int>(row.size()) != n || static_cast<int>(m.size()) != n)
        ThrowStatus(InvalidArgument("a mixing matrix must be n x n with n the same for all"));
      rows.insert(rows.end(), row.begin(), row.end());
    }
    flat.push_back(std::move(rows));
  }
  Graph g;
  ThrowIfError(Graph::FromMatrices(n, std::move(flat), &g));
  return g;
}

py::dict Weights(const Graph& g, int rank, int64_t step) {
  gossip::MixingWeights w;
  ThrowIfError(g.Weights(rank, step, &w));
  auto pairs = [](const std::vector<gossip::Neighbor>& ns) {
    py::list out;
    for (const auto& n : ns) out.append(py::make_tuple(n.rank, n.weight));
    return out;
  };
  py::dict d;
  d["self_weight"] = w.self_weight;
  d["send_to"] = pairs(w.send_to);
  d["recv_from"] = pairs(w.recv_from);
  return d;
}

}  // namespace

void BindGossip(py::module_& m) {
  py::class_<Graph>(m, "GossipGraph")
      .def(py::init(&MakeGraph), py::arg("kind"), py::arg("size"), py::arg("max_degree") = 1)
      .def_static("from_matrices", &MatrixGraph, py::arg("matrices"))
      .def_property_readonly("size", &Graph::size)
      .def_property_readonly("period", &Graph::period)
      .def_property_readonly("time_varying", &Graph::time_varying)
      .def_property_readonly("kind", [](const Graph& g) { return gossip::GraphKindName(g.kind()); })
      .def_property_readonly("description", &Graph::description)
      .def_property_readonly("exact_consensus", &Graph::exact_consensus)
      .def("weights", &Weights, py::arg("rank"), py::arg("step") = 0)
      .def(
          "matrix", [](const Graph& g, int64_t step) { return gossip::DenseMatrix(g, step); },
          py::arg("step") = 0)
      .def("spectral_gap", [](const Graph& g) { return gossip::SpectralGap(g); });
  BindDecentralized(m);
}

}  // namespace braid::python
