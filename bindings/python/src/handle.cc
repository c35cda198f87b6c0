#include "handle.h"

#include <utility>

#include "errors.h"
#include "tensor_view.h"

namespace py = pybind11;

namespace braid::python {
namespace {

struct Orphan {
  std::shared_ptr<Handle> handle;
  std::vector<py::object> keepalive;
};

// Buffers of operations whose Python handle went away before they finished. Never
// destroyed: it may hold Python objects when the interpreter is gone.
std::vector<Orphan>& Orphans() {
  static auto* orphans = new std::vector<Orphan>();
  return *orphans;
}

// The braid-owned allgather output, exported through the buffer protocol; it keeps
// the engine handle (and so the pooled buffer) alive.
struct GatherOutput {
  std::shared_ptr<Handle> handle;
  DataType dtype;
};

py::buffer_info GatherBuffer(const GatherOutput& out) {
  const auto& shape = out.handle->output_shape();
  auto itemsize = static_cast<py::ssize_t>(DataTypeSize(out.dtype));
  std::vector<py::ssize_t> dims(shape.begin(), shape.end());
  std::vector<py::ssize_t> strides(dims.size());
  py::ssize_t stride = itemsize;
  for (size_t i = dims.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= dims[i];
  }
  static char empty = 0;
  const char* data = out.handle->output_data();
  return py::buffer_info(const_cast<char*>(data ? data : &empty), itemsize, BufferFormat(out.dtype),
                         static_cast<py::ssize_t>(dims.size()), dims, strides, /*readonly=*/false);
}

}  // namespace

PyHandle::~PyHandle() {
  if (handle && !handle->Poll() && !keepalive.empty()) {
    Orphans().push_back({handle, std::move(keepalive)});
  }
}

void SweepOrphans() {
  auto& orphans = Orphans();
  std::vector<Orphan> pending;
  for (auto& o : orphans) {
    if (!o.handle->Poll()) pending.push_back(std::move(o));
  }
  orphans.swap(pending);
}

void PyHandle::Wait() {
  Status status;
  {
    py::gil_scoped_release release;
    status = handle->Wait();
  }
  ThrowIfError(status);
}

py::object PyHandle::Result() {
  Wait();
  if (collective != Collective::kAllgather) return result;
  return py::cast(GatherOutput{handle, dtype});
}

void BindHandle(py::module_& m) {
  py::class_<GatherOutput>(m, "GatherOutput", py::buffer_protocol()).def_buffer(&GatherBuffer);
  py::class_<PyHandle>(m, "Handle")
      .def("poll", &PyHandle::Poll, "True once the operation has finished.")
      .def("wait", &PyHandle::Wait, "Blocks until done; raises on failure.")
      .def("result", &PyHandle::Result, "Waits, then returns the output.");
}

}  // namespace braid::python
