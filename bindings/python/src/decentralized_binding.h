// braid._C's decentralized momentum SGD op (ops/gossip/decentralized.h) on DLPack
// and buffer-protocol arrays; braid.ops.DecentralizedSGD wraps it. Registered from
// BindGossip (gossip_binding.cc).
//
// Threading: an op is used by one Python thread at a time (a second thread gets an
// error, not a race); its collective calls release the GIL while they wait.
#pragma once

#include <pybind11/pybind11.h>

namespace braid::python {

void BindDecentralized(pybind11::module_& m);

}  // namespace braid::python
