// braid._C's restart ops (RestartOp: local SGD, PR-SGD-Momentum, SlowMo / BMUF on
// DLPack and buffer-protocol arrays) and the communication counters.
//
// Threading: a RestartOp is used by one Python thread at a time (a second thread
// gets an error, not a race); step() and restart() release the GIL while they wait.
#pragma once

#include <pybind11/pybind11.h>

namespace braid::python {

void BindOps(pybind11::module_& m);

}  // namespace braid::python
