// The default engine of the Python API and the functions that reach it.
//
// Threading: init and shutdown take the engine exclusively, everything else shares
// it; blocking calls release the GIL.
#pragma once

#include <pybind11/pybind11.h>

namespace braid::python {

void BindEngine(pybind11::module_& m);
void BindCollectives(pybind11::module_& m);
void BindSparse(pybind11::module_& m);
void BindNeighborCollectives(pybind11::module_& m);
// Private functions of the benchmarks (bench_binding.cc).
void BindBench(pybind11::module_& m);

}  // namespace braid::python
