#include "compress_binding.h"

#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "errors.h"
#include "ops/compress/device_kernels.h"
#include "ops/compress/memory.h"
#include "ops/compress/selection.h"
#include "tensor_view.h"

namespace py = pybind11;

namespace braid::python {
namespace {

// An array as a flat buffer view; `keep` holds the exported buffer while it is used.
// None gives an empty view (an output that is not wanted, an absent input).
BufferView Flat(const py::object& array, const char* name, bool writable, uintptr_t stream,
                std::vector<py::object>* keep) {
  if (array.is_none()) return BufferView();
  return FlatView(array, name, writable, stream, keep);
}

// Runs `f` (a kernel call) without the GIL and raises its error.
template <typename F>
void Run(F f) {
  Status st;
  {
    py::gil_scoped_release release;
    st = f();
  }
  ThrowIfError(st);
}

void TopK(const py::object& x, int64_t k, const py::object& indices, const py::object& values,
          int num_threads, uintptr_t stream) {
  std::vector<py::object> keep;
  BufferView xv = Flat(x, "x", false, stream, &keep);
  BufferView iv = Flat(indices, "indices", true, stream, &keep);
  BufferView vv = Flat(values, "values", true, stream, &keep);
  Run([&] { return compress::TopK(xv, k, iv, vv, compress::SelectOptions{num_threads}); });
}

py::tuple ThresholdTopK(const py::object& x, int64_t k, const py::object& indices,
                        const py::object& values, double sample_fraction, uint64_t seed,
                        int max_rounds, int num_threads, uintptr_t stream) {
  std::vector<py::object> keep;
  BufferView xv = Flat(x, "x", false, stream, &keep);
  BufferView iv = Flat(indices, "indices", true, stream, &keep);
  BufferView vv = Flat(values, "values", true, stream, &keep);
  compress::ThresholdOptions o;
  o.sample_fraction = sample_fraction;
  o.seed = seed;
  o.max_rounds = max_rounds;
  o.num_threads = num_threads;
  compress::ThresholdResult r;
  Run([&] { return compress::ThresholdTopK(xv, k, iv, vv, o, &r); });
  return py::make_tuple(r.selected, r.candidates, r.rounds, r.threshold);
}

void RandomK(const py::object& x, int64_t k, uint64_t seed, const py::object& indices,
             const py::object& values, uintptr_t stream) {
  std::vector<py::object> keep;
  BufferView xv = Flat(x, "x", false, stream, &keep);
  BufferView iv = Flat(indices, "indices", true, stream, &keep);
  BufferView vv = Flat(values, "values", true, stream, &keep);
  Run([&] { return compress::RandomK(xv, k, seed, iv, vv); });
}

std::vector<int64_t> SegmentedTopK(const py::object& x, const std::vector<int64_t>& offsets,
                                   const std::vector<int64_t>& ks, int64_t global_k,
                                   const py::object& indices, const py::object& values,
                                   int num_threads, uintptr_t stream) {
  std::vector<py::object> keep;
  BufferView xv = Flat(x, "x", false, stream, &keep);
  BufferView iv = Flat(indices, "indices", true, stream, &keep);
  BufferView vv = Flat(values, "values", true, stream, &keep);
  std::vector<int64_t> counts;
  const compress::SelectOptions o{num_threads};
  Run([&] {
    if (global_k >= 0)
      return compress::SegmentedTopKGlobal(xv, offsets, global_k, iv, vv, &counts, o);
    return compress::SegmentedTopK(xv, offsets, ks, iv, vv, &counts, o);
  });
  return counts;
}

std::vector<int64_t> KForDensity(const std::vector<int64_t>& offsets, double density) {
  std::vector<int64_t> ks;
  ThrowIfError(compress::KForDensity(offsets, density, &ks));
  return ks;
}

void ErrorFeedback(const py::object& e, const py::object& g, const py::object& d, double a,
                   double b, int num_threads, uintptr_t stream) {
  std::vector<py::object> keep;
  BufferView ev = Flat(e, "memory", true, stream, &keep);
  BufferView gv = Flat(g, "grad", false, stream, &keep);
  BufferView dv = Flat(d, "d", false, stream, &keep);
  Run([&] { return compress::ErrorFeedback(ev, gv, dv, a, b, num_threads); });
}

void ExtractSent(const py::object& e, const py::object& indices, const py::object& values,
                 uintptr_t stream) {
  std::vector<py::object> keep;
  BufferView ev = Flat(e, "memory", true, stream, &keep);
  BufferView iv = Flat(indices, "indices", false, stream, &keep);
  BufferView vv = Flat(values, "values", true, stream, &keep);
  Run([&] { return compress::ExtractSent(ev, iv, vv); });
}

}  // namespace

void BindCompress(py::module_& m) {
  m.def("compress_topk", &TopK, py::arg("x"), py::arg("k"), py::arg("indices"), py::arg("values"),
        py::arg("num_threads"), py::arg("stream"));
  m.def("compress_threshold_topk", &ThresholdTopK, py::arg("x"), py::arg("k"), py::arg("indices"),
        py::arg("values"), py::arg("sample_fraction"), py::arg("seed"), py::arg("max_rounds"),
        py::arg("num_threads"), py::arg("stream"), "(selected, candidates, rounds, threshold)");
  m.def("compress_random_k", &RandomK, py::arg("x"), py::arg("k"), py::arg("seed"),
        py::arg("indices"), py::arg("values"), py::arg("stream"));
  m.def("compress_segmented_topk", &SegmentedTopK, py::arg("x"), py::arg("offsets"), py::arg("ks"),
        py::arg("global_k"), py::arg("indices"), py::arg("values"), py::arg("num_threads"),
        py::arg("stream"),
        "Per-segment k (global_k < 0) or one global k; returns the entries per segment.");
  m.def("compress_k_for_density", &KForDensity, py::arg("offsets"), py::arg("density"));
  m.def("compress_error_feedback", &ErrorFeedback, py::arg("memory"), py::arg("grad"), py::arg("d"),
        py::arg("a"), py::arg("b"), py::arg("num_threads"), py::arg("stream"));
  m.def("compress_extract_sent", &ExtractSent, py::arg("memory"), py::arg("indices"),
        py::arg("values"), py::arg("stream"));
  // Loads the CUDA plugin when none is loaded yet (which registers the kernels).
  m.def("compress_device_kernels_registered", [] {
    const compress::CompressDeviceKernels* k = nullptr;
    return compress::CompressDeviceKernelsFor("probe", 0, &k).ok();
  });
}

}  // namespace braid::python
