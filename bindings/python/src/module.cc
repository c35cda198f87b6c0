// braid._C: the compiled core of the braid Python package. It sees tensors only
// through the buffer protocol and DLPack, never through a framework's headers.
#include <pybind11/pybind11.h>

#include "compress_binding.h"
#include "engine.h"
#include "gossip_binding.h"
#include "handle.h"
#include "ops_binding.h"
#include "placement_binding.h"
#include "sparse_ops_binding.h"

PYBIND11_MODULE(_C, m) {
  m.doc() = "braid's engine: collectives over MPI on buffer-protocol and DLPack arrays";
  braid::python::BindHandle(m);
  braid::python::BindEngine(m);
  braid::python::BindCollectives(m);
  braid::python::BindSparse(m);
  braid::python::BindNeighborCollectives(m);
  braid::python::BindOps(m);
  braid::python::BindCompress(m);
  braid::python::BindSparseOps(m);
  braid::python::BindGossip(m);
  braid::python::BindBench(m);
  braid::python::BindPlacement(m);
}
