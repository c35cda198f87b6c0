// braid._C.Handle: the Python side of one in-flight operation. It holds the engine's
// Handle and references to the Python arrays the engine reads and writes, so they
// stay alive until the operation has finished (also when the caller drops the
// handle early: see Orphan).
//
// Threading: every method runs with the GIL held; Wait releases it while blocking.
#pragma once

#include <pybind11/pybind11.h>

#include <memory>
#include <vector>

#include "common/types.h"
#include "core/handle.h"

namespace braid::python {

struct PyHandle {
  std::shared_ptr<Handle> handle;
  Collective collective = Collective::kAllreduce;
  DataType dtype = DataType::kFloat32;
  // Sparse allgather: the index type and each value's shape (the dense shape
  // without its first dimension).
  DataType index_dtype = DataType::kInt32;
  std::vector<int64_t> row_shape;
  pybind11::object result;                  // output array (allreduce, broadcast)
  std::vector<pybind11::object> keepalive;  // buffers the engine uses

  PyHandle() = default;
  PyHandle(const PyHandle&) = delete;
  PyHandle& operator=(const PyHandle&) = delete;
  ~PyHandle();

  bool Poll() const { return handle->Poll(); }
  // Blocks without the GIL until done; raises the braid error of a failed operation.
  void Wait();
  // Waits, then returns the output: the output array, for allgather a
  // buffer-protocol object over the braid-owned result, for join the rank that
  // joined last (an int), for a sparse allgather a tuple (indices, values,
  // pairs per rank).
  pybind11::object Result();
};

// A DLPack capsule over `data` (`shape` elements of `dtype` on `device`) that keeps
// `owner` alive until the consumer (or, unconsumed, the capsule) lets it go.
pybind11::object ExportDLPack(std::shared_ptr<void> owner, const void* data, DataType dtype,
                              std::vector<int64_t> shape, int device);

// Drops the references of finished orphaned operations.
void SweepOrphans();

void BindHandle(pybind11::module_& m);

}  // namespace braid::python
