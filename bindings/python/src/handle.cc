#include "handle.h"

#include <utility>

#include "dlpack_abi.h"
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

// The braid-owned allgather output (or one part of a sparse allgather's), exported
// through the buffer protocol and DLPack; it keeps the engine handle (and so the
// buffer) alive.
struct GatherOutput {
  std::shared_ptr<Handle> handle;
  DataType dtype;
  int64_t offset = 0;  // bytes into the handle's output
  std::vector<int64_t> shape;

  const char* data() const {
    const char* base = handle->output_data();
    return base == nullptr ? nullptr : base + offset;
  }
};

py::buffer_info GatherBuffer(const GatherOutput& out) {
  if (out.handle->output_device() != kCpuDevice)
    ThrowStatus(
        InvalidArgument("the allgather output is in GPU memory: read it through DLPack "
                        "(e.g. torch.from_dlpack), not the buffer protocol"));
  const auto& shape = out.shape;
  auto itemsize = static_cast<py::ssize_t>(DataTypeSize(out.dtype));
  std::vector<py::ssize_t> dims(shape.begin(), shape.end());
  std::vector<py::ssize_t> strides(dims.size());
  py::ssize_t stride = itemsize;
  for (size_t i = dims.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= dims[i];
  }
  static char empty = 0;
  const char* data = out.data();
  return py::buffer_info(const_cast<char*>(data ? data : &empty), itemsize, BufferFormat(out.dtype),
                         static_cast<py::ssize_t>(dims.size()), dims, strides, /*readonly=*/false);
}

DLDataType ToDLDataType(DataType dtype) {
  auto bits = static_cast<uint8_t>(8 * DataTypeSize(dtype));
  switch (dtype) {
    case DataType::kUInt8:
      return {kDLUInt, bits, 1};
    case DataType::kFloat16:
    case DataType::kFloat32:
    case DataType::kFloat64:
      return {kDLFloat, bits, 1};
    case DataType::kBFloat16:
      return {kDLBfloat, bits, 1};
    case DataType::kBool:
      return {kDLBool, bits, 1};
    default:
      return {kDLInt, bits, 1};
  }
}

py::object GatherDLPack(const GatherOutput& out, const py::args&, const py::kwargs&) {
  return ExportDLPack(out.handle, out.data(), out.dtype, out.shape, out.handle->output_device());
}

}  // namespace

namespace {

// What a DLPack consumer owns: a reference to the memory's owner and the shape.
struct DLPackExport {
  std::shared_ptr<void> owner;
  std::vector<int64_t> shape;
  DLManagedTensor managed;
};

void DeleteExport(DLManagedTensor* m) {
  delete static_cast<DLPackExport*>(m->manager_ctx);
}

// A capsule nobody consumed still owns its tensor.
void DeleteUnusedCapsule(PyObject* capsule) {
  if (!PyCapsule_IsValid(capsule, "dltensor")) return;
  auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule, "dltensor"));
  if (m && m->deleter) m->deleter(m);
}

}  // namespace

py::object ExportDLPack(std::shared_ptr<void> owner, const void* data, DataType dtype,
                        std::vector<int64_t> shape, int device) {
  auto* e = new DLPackExport{std::move(owner), std::move(shape), {}};
  DLTensor& t = e->managed.dl_tensor;
  t.data = const_cast<void*>(data);
  t.device = device == kCpuDevice ? DLDevice{kDLCPU, 0} : DLDevice{kDLCUDA, device};
  t.ndim = static_cast<int32_t>(e->shape.size());
  t.dtype = ToDLDataType(dtype);
  t.shape = e->shape.data();
  t.strides = nullptr;
  t.byte_offset = 0;
  e->managed.manager_ctx = e;
  e->managed.deleter = &DeleteExport;
  PyObject* capsule = PyCapsule_New(&e->managed, "dltensor", &DeleteUnusedCapsule);
  if (capsule == nullptr) {
    DeleteExport(&e->managed);
    throw py::error_already_set();
  }
  return py::reinterpret_steal<py::object>(capsule);
}

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
  if (handle->Poll()) {
    status = handle->status();  // finished: no need to give up the GIL
  } else {
    py::gil_scoped_release release;
    status = handle->Wait();
  }
  ThrowIfError(status);
}

py::object PyHandle::Result() {
  Wait();
  if (collective == Collective::kJoin) return py::int_(handle->int_result());
  if (collective == Collective::kSparseAllgather) {
    const int64_t total = handle->output_shape().empty() ? 0 : handle->output_shape()[0];
    std::vector<int64_t> values_shape{total};
    values_shape.insert(values_shape.end(), row_shape.begin(), row_shape.end());
    py::list pairs;
    for (int64_t p : handle->pairs()) pairs.append(p);
    return py::make_tuple(GatherOutput{handle, index_dtype, 0, {total}},
                          GatherOutput{handle, dtype, handle->values_offset(), values_shape},
                          pairs);
  }
  if (collective != Collective::kAllgather && collective != Collective::kNeighborExchange)
    return result;
  return py::cast(GatherOutput{handle, dtype, 0, handle->output_shape()});
}

void BindHandle(py::module_& m) {
  py::class_<GatherOutput>(m, "GatherOutput", py::buffer_protocol())
      .def_buffer(&GatherBuffer)
      .def("__dlpack__", &GatherDLPack)
      .def("__dlpack_device__", [](const GatherOutput& out) -> py::tuple {
        const int device = out.handle->output_device();
        if (device == kCpuDevice) return py::make_tuple(kDLCPU, 0);
        return py::make_tuple(kDLCUDA, device);
      });
  py::class_<PyHandle>(m, "Handle")
      .def("poll", &PyHandle::Poll, "True once the operation has finished.")
      .def("wait", &PyHandle::Wait, "Blocks until done; raises on failure.")
      .def("result", &PyHandle::Result, "Waits, then returns the output.");
}

}  // namespace braid::python
