// allreduce_async, allgather_async, broadcast_async, barrier and join_async over
// the default engine.
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "engine.h"
#include "engine_state.h"
#include "errors.h"
#include "handle.h"
#include "tensor_view.h"

namespace py = pybind11;

namespace braid::python {
namespace {

std::unique_ptr<PyHandle> Submit(Request request, Collective collective, DataType dtype) {
  SweepOrphans();
  auto h = std::make_unique<PyHandle>();
  h->collective = collective;
  h->dtype = dtype;
  request.meta.collective = collective;
  ThrowIfError(EnqueueOnDefault(std::move(request), &h->handle));
  return h;
}

void Describe(const std::string& name, const TensorView& view, Request* r) {
  r->meta.name = name;
  r->meta.dtype = view.dtype;
  r->meta.device = view.device;
  r->meta.shape = view.shape;
}

void CheckSameLayout(const std::string& name, const TensorView& in, const TensorView& out) {
  if (in.dtype != out.dtype || in.shape != out.shape || in.device != out.device) {
    ThrowStatus(InvalidArgument("allreduce of '" + name +
                                "': the output must have the input's dtype, shape and device"));
  }
}

std::unique_ptr<PyHandle> AllreduceAsync(const std::string& name, py::object array,
                                         py::object output, int op, double prescale,
                                         double postscale, uintptr_t stream, py::object result) {
  if (!IsValidReduceOp(op)) {
    ThrowStatus(
        InvalidArgument("allreduce of '" + name + "': unknown reduce op " + std::to_string(op)));
  }
  bool in_place = output.is_none() || output.is(array);
  TensorView in = ViewOf(array, name, /*writable=*/in_place);
  Request r;
  Describe(name, in, &r);
  r.meta.op = static_cast<ReduceOp>(op);
  r.meta.prescale = prescale;
  r.meta.postscale = postscale;
  r.stream = reinterpret_cast<void*>(stream);
  r.input = in.data;
  r.output = in.data;
  std::vector<py::object> keep{array, in.keepalive};
  if (!in_place) {
    TensorView out = ViewOf(output, name + " (output)", /*writable=*/true);
    CheckSameLayout(name, in, out);
    r.output = out.data;
    keep.push_back(output);
    keep.push_back(out.keepalive);
  }
  auto h = Submit(std::move(r), Collective::kAllreduce, in.dtype);
  if (!result.is_none()) {
    h->result = std::move(result);
  } else {
    h->result = in_place ? array : output;
  }
  h->keepalive = std::move(keep);
  return h;
}

std::unique_ptr<PyHandle> AllgatherAsync(const std::string& name, py::object array,
                                         uintptr_t stream) {
  TensorView in = ViewOf(array, name, /*writable=*/false);
  Request r;
  Describe(name, in, &r);
  r.stream = reinterpret_cast<void*>(stream);
  r.input = in.data;
  auto h = Submit(std::move(r), Collective::kAllgather, in.dtype);
  h->keepalive = {array, in.keepalive};
  return h;
}

std::unique_ptr<PyHandle> BroadcastAsync(const std::string& name, py::object array, int root,
                                         uintptr_t stream) {
  TensorView buf = ViewOf(array, name, /*writable=*/true);
  Request r;
  Describe(name, buf, &r);
  r.stream = reinterpret_cast<void*>(stream);
  r.meta.root = root;
  r.input = r.output = buf.data;
  auto h = Submit(std::move(r), Collective::kBroadcast, buf.dtype);
  h->result = array;
  h->keepalive = {array, buf.keepalive};
  return h;
}

void Barrier() {
  // Barriers from several threads run one after another: they share one name.
  static std::mutex barrier_mutex;
  std::unique_lock<std::mutex> serial(barrier_mutex, std::defer_lock);
  {
    py::gil_scoped_release release;
    serial.lock();
  }
  Request r;
  r.meta.name = "braid.barrier";
  auto h = Submit(std::move(r), Collective::kBarrier, DataType::kUInt8);
  h->Wait();
}

// The handle's result() is the rank that joined last (the same on every rank).
std::unique_ptr<PyHandle> JoinAsync() {
  Request r;  // the engine names it
  return Submit(std::move(r), Collective::kJoin, DataType::kUInt8);
}

}  // namespace

void BindCollectives(py::module_& m) {
  m.def("allreduce_async", &AllreduceAsync, py::arg("name"), py::arg("array"),
        py::arg("output") = py::none(), py::arg("op") = 1, py::arg("prescale") = 1.0,
        py::arg("postscale") = 1.0, py::arg("stream") = 0, py::arg("result") = py::none(),
        "Reduces `array` into `output` (None: in place). `stream`: the cudaStream_t (as an "
        "integer) a GPU tensor was produced on; 0: the default stream. `result`: what the "
        "handle's result() returns (None: the output array; braid.torch passes the tensor "
        "whose DLPack capsule `array` is).");
  m.def("allgather_async", &AllgatherAsync, py::arg("name"), py::arg("array"),
        py::arg("stream") = 0, "Concatenates every rank's `array` along the first dimension.");
  m.def("broadcast_async", &BroadcastAsync, py::arg("name"), py::arg("array"), py::arg("root"),
        py::arg("stream") = 0, "Copies `array` on `root` into `array` on every rank (in place).");
  m.def("barrier", &Barrier, "Blocks until every rank has called it.");
  m.def("join_async", &JoinAsync,
        "Declares that this rank has no more data; until every rank has joined it takes "
        "part in the others' allreduces (zeros) and allgathers (no rows). result() is the "
        "rank that joined last.");
}

}  // namespace braid::python
