// braid._C's sparse training ops (SparseOp: M-DSGD, GMC, DGC on DLPack and
// buffer-protocol arrays; braid.ops wraps them) and their state buffers.
//
// Threading: a SparseOp is used by one Python thread at a time (a second thread
// gets an error, not a race); step() releases the GIL while it runs.
#pragma once

#include <pybind11/pybind11.h>

namespace braid::python {

void BindSparseOps(pybind11::module_& m);

}  // namespace braid::python
