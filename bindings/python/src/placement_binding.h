// braid.placement() and the planner behind `braidrun --print-placement`.
#pragma once

#include <pybind11/pybind11.h>

#include <string>

#include "core/topology.h"

namespace braid::python {

// One placement row as a dict (cpus as a list of os indexes).
pybind11::dict PlacementDict(const Placement& p, const std::string& host);
// _C.plan_placement: the host table for `local_size` ranks, without an engine.
void BindPlacement(pybind11::module_& m);

}  // namespace braid::python
