// neighbor_allreduce_async and neighbor_exchange_async over the default engine
// (docs/gossip.md). The graph lists arrive sorted (braid/__init__.py sorts them
// with their weights); the engine checks them.
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

Request Describe(const std::string& name, Collective collective, const TensorView& in,
                 std::vector<int32_t> send_to, std::vector<int32_t> recv_from, uintptr_t stream) {
  Request r;
  r.meta.name = name;
  r.meta.collective = collective;
  r.meta.dtype = in.dtype;
  r.meta.device = in.device;
  r.meta.shape = in.shape;
  r.meta.send_to = std::move(send_to);
  r.meta.recv_from = std::move(recv_from);
  r.input = in.data;
  r.stream = reinterpret_cast<void*>(stream);
  return r;
}

std::unique_ptr<PyHandle> Submit(Request request, DataType dtype) {
  SweepOrphans();
  auto h = std::make_unique<PyHandle>();
  h->collective = request.meta.collective;
  h->dtype = dtype;
  ThrowIfError(EnqueueOnDefault(std::move(request), &h->handle));
  return h;
}

std::unique_ptr<PyHandle> NeighborAllreduceAsync(const std::string& name, py::object array,
                                                 py::object output, std::vector<int32_t> send_to,
                                                 std::vector<int32_t> recv_from,
                                                 double self_weight,
                                                 std::vector<double> recv_weights,
                                                 uintptr_t stream) {
  const bool in_place = output.is_none() || output.is(array);
  TensorView in = ViewOf(array, name, /*writable=*/in_place);
  Request r = Describe(name, Collective::kNeighborAllreduce, in, std::move(send_to),
                       std::move(recv_from), stream);
  r.self_weight = self_weight;
  r.recv_weights = std::move(recv_weights);
  r.output = in.data;
  std::vector<py::object> keep{array, in.keepalive};
  if (!in_place) {
    TensorView out = ViewOf(output, name + " (output)", /*writable=*/true);
    if (out.dtype != in.dtype || out.shape != in.shape || out.device != in.device) {
      ThrowStatus(InvalidArgument("neighbor_allreduce of '" + name +
                                  "': the output must have the input's dtype, shape and device"));
    }
    r.output = out.data;
    keep.push_back(output);
    keep.push_back(out.keepalive);
  }
  auto h = Submit(std::move(r), in.dtype);
  h->result = in_place ? array : output;
  h->keepalive = std::move(keep);
  return h;
}

std::unique_ptr<PyHandle> NeighborExchangeAsync(const std::string& name, py::object array,
                                                std::vector<int32_t> send_to,
                                                std::vector<int32_t> recv_from, uintptr_t stream) {
  TensorView in = ViewOf(array, name, /*writable=*/false);
  Request r = Describe(name, Collective::kNeighborExchange, in, std::move(send_to),
                       std::move(recv_from), stream);
  auto h = Submit(std::move(r), in.dtype);
  h->keepalive = {array, in.keepalive};
  return h;
}

}  // namespace

void BindNeighborCollectives(py::module_& m) {
  m.def("neighbor_allreduce_async", &NeighborAllreduceAsync, py::arg("name"), py::arg("array"),
        py::arg("output"), py::arg("send_to"), py::arg("recv_from"), py::arg("self_weight"),
        py::arg("recv_weights"), py::arg("stream") = 0,
        "output = self_weight * array + sum of recv_weights[k] * (rank recv_from[k]'s array); "
        "output None: in place. The lists ascending.");
  m.def("neighbor_exchange_async", &NeighborExchangeAsync, py::arg("name"), py::arg("array"),
        py::arg("send_to"), py::arg("recv_from"), py::arg("stream") = 0,
        "The arrays of the ranks in recv_from (ascending), stacked: shape [len(recv_from), ...].");
}

}  // namespace braid::python
