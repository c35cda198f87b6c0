// sparse_allreduce_async and sparse_allgather_async over the default engine
// (docs/sparse.md): (index, value) pairs given as any buffer-protocol or DLPack
// arrays.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <pybind11/stl.h>

#include "engine.h"
#include "engine_state.h"
#include "errors.h"
#include "handle.h"
#include "tensor_view.h"

namespace py = pybind11;

namespace braid::python {
namespace {

// The pairs' views and the parts a sparse request is described from.
struct Pairs {
  TensorView indices;
  TensorView values;
  SparseParts parts;
};

Pairs ViewPairs(const std::string& name, const py::object& indices, const py::object& values) {
  Pairs p;
  p.indices = ViewOf(indices, name + " (indices)", /*writable=*/false);
  p.values = ViewOf(values, name + " (values)", /*writable=*/false);
  p.parts.index_dtype = p.indices.dtype;
  p.parts.index_shape = p.indices.shape;
  p.parts.index_device = p.indices.device;
  p.parts.value_dtype = p.values.dtype;
  p.parts.value_shape = p.values.shape;
  p.parts.value_device = p.values.device;
  return p;
}

std::unique_ptr<PyHandle> Submit(Request request) {
  SweepOrphans();
  auto h = std::make_unique<PyHandle>();
  h->collective = request.meta.collective;
  h->dtype = request.meta.dtype;
  h->index_dtype = request.meta.index_dtype;
  h->row_shape.assign(request.meta.shape.begin() + 1, request.meta.shape.end());
  ThrowIfError(EnqueueOnDefault(std::move(request), &h->handle));
  return h;
}

std::unique_ptr<PyHandle> SparseAllreduceAsync(const std::string& name, py::object indices,
                                               py::object values, py::object dense, int op,
                                               bool dense_fallback, uintptr_t stream) {
  if (op != static_cast<int>(ReduceOp::kSum) && op != static_cast<int>(ReduceOp::kAverage)) {
    ThrowStatus(InvalidArgument("sparse_allreduce of '" + name +
                                "': op must be Sum or Average, not " + std::to_string(op)));
  }
  Pairs p = ViewPairs(name, indices, values);
  TensorView out = ViewOf(dense, name + " (dense)", /*writable=*/true);
  p.parts.dense_shape = out.shape;
  p.parts.dense_dtype = out.dtype;
  p.parts.dense_device = out.device;
  Request r;
  ThrowIfError(DescribeSparse(name, Collective::kSparseAllreduce, p.parts, &r.meta));
  r.meta.op = static_cast<ReduceOp>(op);
  r.meta.dense_fallback = dense_fallback;
  r.indices = p.indices.data;
  r.input = p.values.data;
  r.output = out.data;
  r.stream = reinterpret_cast<void*>(stream);
  auto h = Submit(std::move(r));
  h->result = dense;
  h->keepalive = {indices, values, dense, p.indices.keepalive, p.values.keepalive, out.keepalive};
  return h;
}

std::unique_ptr<PyHandle> SparseAllgatherAsync(const std::string& name, py::object indices,
                                               py::object values,
                                               const std::vector<int64_t>& dense_shape,
                                               uintptr_t stream) {
  Pairs p = ViewPairs(name, indices, values);
  p.parts.dense_shape = dense_shape;
  Request r;
  ThrowIfError(DescribeSparse(name, Collective::kSparseAllgather, p.parts, &r.meta));
  r.indices = p.indices.data;
  r.input = p.values.data;
  r.stream = reinterpret_cast<void*>(stream);
  auto h = Submit(std::move(r));
  h->keepalive = {indices, values, p.indices.keepalive, p.values.keepalive};
  return h;
}

}  // namespace

void BindSparse(py::module_& m) {
  m.def("sparse_allreduce_async", &SparseAllreduceAsync, py::arg("name"), py::arg("indices"),
        py::arg("values"), py::arg("dense"), py::arg("op") = 1, py::arg("dense_fallback") = true,
        py::arg("stream") = 0,
        "Writes into `dense` the sum (op 0) or average (op 1) over ranks of every rank's "
        "(index, value) pairs: `indices` (k int32/int64) address the first dimension of "
        "`dense`; `values` has shape [k] + dense.shape[1:]. result() is `dense`.");
  m.def("sparse_allgather_async", &SparseAllgatherAsync, py::arg("name"), py::arg("indices"),
        py::arg("values"), py::arg("dense_shape"), py::arg("stream") = 0,
        "Gathers every rank's pairs in rank order; result() is (indices, values, pairs per "
        "rank), the first two braid-owned arrays (buffer protocol and DLPack).");
}

}  // namespace braid::python
