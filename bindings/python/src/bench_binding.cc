// Private functions for bench/torch_path_bench.py: the engine path without Python.
//
// They enqueue into the default engine, on the caller's arrays and rank, and wait in
// C++ with the GIL released, so that the benchmark can put what Python (braid.torch,
// its DLPack export and handles) adds beside what the engine itself costs, in one
// process and one run. Not part of the API: names and signatures may change.
//
// Threading: called with the GIL held; the loops run without it (the arrays' views
// are taken before, and the arrays stay referenced by the caller throughout).
#include <pybind11/stl.h>

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine.h"
#include "engine_state.h"
#include "errors.h"
#include "tensor_view.h"

namespace py = pybind11;

namespace braid::python {
namespace {

using BenchClock = std::chrono::steady_clock;

double SecondsSince(BenchClock::time_point start) {
  return std::chrono::duration<double>(BenchClock::now() - start).count();
}

// An in-place allreduce of `view`, built as the Python binding builds it.
Request InPlaceAllreduce(const std::string& name, const TensorView& view, int op) {
  Request r;
  r.meta.name = name;
  r.meta.collective = Collective::kAllreduce;
  r.meta.dtype = view.dtype;
  r.meta.device = view.device;
  r.meta.shape = view.shape;
  r.meta.op = static_cast<ReduceOp>(op);
  r.input = view.data;
  r.output = view.data;
  return r;
}

// Enqueues every request of `views` (one name each), then waits for all of them.
Status RunBatch(const std::vector<TensorView>& views, const std::vector<std::string>& names,
                int op) {
  std::vector<std::shared_ptr<Handle>> handles(views.size());
  for (size_t i = 0; i < views.size(); ++i) {
    Status st = EnqueueOnDefault(InPlaceAllreduce(names[i], views[i], op), &handles[i]);
    if (!st.ok()) return st;
  }
  Status first;
  for (auto& h : handles) {
    Status st = h->Wait();
    if (first.ok() && !st.ok()) first = st;
  }
  return first;
}

// `iters` rounds of RunBatch over `arrays`; returns each round's seconds (enqueue of
// the first tensor to the wake-up after the last).
std::vector<double> AllreduceBatchLoop(const py::list& arrays,
                                       const std::vector<std::string>& names, int iters, int op) {
  if (names.size() != arrays.size())
    ThrowStatus(InvalidArgument("_engine_allreduce_batch: one name per array"));
  std::vector<TensorView> views;
  for (size_t i = 0; i < names.size(); ++i)
    views.push_back(ViewOf(arrays[i], names[i], /*writable=*/true));
  std::vector<double> seconds;
  Status status;
  {
    py::gil_scoped_release release;
    for (int it = 0; it < iters && status.ok(); ++it) {
      auto start = BenchClock::now();
      status = RunBatch(views, names, op);
      seconds.push_back(SecondsSince(start));
    }
  }
  ThrowIfError(status);
  return seconds;
}

// `iters` in-place allreduces of `array` named `name`, one after another; returns each
// one's seconds from enqueue to the wake-up of the waiter.
std::vector<double> AllreduceLoop(const py::object& array, int iters, const std::string& name,
                                  int op) {
  py::list arrays;
  arrays.append(array);
  return AllreduceBatchLoop(arrays, {name}, iters, op);
}

}  // namespace

void BindBench(py::module_& m) {
  m.def("_engine_allreduce_loop", &AllreduceLoop, py::arg("array"), py::arg("iters"),
        py::arg("name"), py::arg("op") = 1,
        "Private (benchmarks): `iters` in-place allreduces of `array`, each enqueued into the "
        "default engine and waited for in C++ without the GIL; each call's seconds.");
  m.def("_engine_allreduce_batch", &AllreduceBatchLoop, py::arg("arrays"), py::arg("names"),
        py::arg("iters"), py::arg("op") = 1,
        "Private (benchmarks): `iters` rounds of enqueueing an in-place allreduce of every "
        "array (names[i]) and then waiting for them all, in C++ without the GIL; each "
        "round's seconds.");
}

}  // namespace braid::python
