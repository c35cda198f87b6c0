// braid._C's gossip graphs (ops/gossip/graph.h): each rank's mixing weights at a
// step, the dense W and the spectral gap; braid.ops.GossipGraph wraps them.
//
// Threading: a graph is immutable; any thread may query it.
#pragma once

#include <pybind11/pybind11.h>

namespace braid::python {

void BindGossip(pybind11::module_& m);

}  // namespace braid::python
