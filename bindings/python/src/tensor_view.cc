#include "tensor_view.h"

#include <memory>

#include "collectives/transport.h"
#include "core/request.h"
#include "dlpack_abi.h"
#include "errors.h"

namespace py = pybind11;

namespace braid::python {
namespace {

[[noreturn]] void Reject(const std::string& name, const std::string& why) {
  ThrowStatus(InvalidArgument("tensor '" + name + "': " + why));
}

constexpr const char* kSupported =
    "uint8, int8, int16, int32, int64, float16, bfloat16, float32, float64, bool";

// An exporter's shape is checked before anything multiplies it (negative or
// overflowing extents come only from a broken or hostile exporter, but must not
// become a crash), with the engine's own check, so the message is the same as a
// C caller gets.
void CheckShape(const std::string& name, const TensorView& view) {
  Status st = ValidateShape(name, view.shape, view.dtype);
  if (!st.ok()) ThrowStatus(st);
}

std::string NotContiguous(const std::vector<int64_t>& shape) {
  std::string dims;
  for (size_t i = 0; i < shape.size(); ++i) dims += (i ? ", " : "") + std::to_string(shape[i]);
  return "is not C-contiguous (shape [" + dims +
         "] with strides of a view); braid reads and writes dense row-major memory: pass a "
         "contiguous copy (numpy.ascontiguousarray, torch's .contiguous())";
}

bool FormatToDataType(const char* format, Py_ssize_t itemsize, DataType* out) {
  std::string f = format ? format : "B";
  if (!f.empty() && (f[0] == '@' || f[0] == '=' || f[0] == '<' || f[0] == '!')) f = f.substr(1);
  if (f.size() != 1) return false;
  switch (f[0]) {
    case 'B':
      *out = DataType::kUInt8;
      return true;
    case 'b':
      *out = DataType::kInt8;
      return true;
    case '?':
      *out = DataType::kBool;
      return true;
    case 'e':
      *out = DataType::kFloat16;
      return true;
    case 'f':
      *out = DataType::kFloat32;
      return true;
    case 'd':
      *out = DataType::kFloat64;
      return true;
    case 'h':
    case 'i':
    case 'l':
    case 'q':
      // C's short, int, long and long long: the item size says which width it is.
      if (itemsize == 2) {
        *out = DataType::kInt16;
      } else if (itemsize == 4 || itemsize == 8) {
        *out = itemsize == 4 ? DataType::kInt32 : DataType::kInt64;
      } else {
        return false;
      }
      return true;
    default:
      return false;
  }
}

bool DLTypeToDataType(DLDataType t, DataType* out) {
  if (t.lanes != 1) return false;
  if (t.code == kDLUInt && t.bits == 8)
    *out = DataType::kUInt8;
  else if (t.code == kDLInt && t.bits == 8)
    *out = DataType::kInt8;
  else if (t.code == kDLInt && t.bits == 16)
    *out = DataType::kInt16;
  else if (t.code == kDLInt && t.bits == 32)
    *out = DataType::kInt32;
  else if (t.code == kDLInt && t.bits == 64)
    *out = DataType::kInt64;
  else if (t.code == kDLFloat && t.bits == 16)
    *out = DataType::kFloat16;
  else if (t.code == kDLFloat && t.bits == 32)
    *out = DataType::kFloat32;
  else if (t.code == kDLFloat && t.bits == 64)
    *out = DataType::kFloat64;
  else if (t.code == kDLBfloat && t.bits == 16)
    *out = DataType::kBFloat16;
  else if (t.code == kDLBool && t.bits == 8)
    *out = DataType::kBool;
  else
    return false;
  return true;
}

TensorView FromBuffer(const py::handle& obj, const std::string& name, bool writable) {
  auto buffer = std::make_unique<Py_buffer>();
  int flags = PyBUF_STRIDES | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
  if (PyObject_GetBuffer(obj.ptr(), buffer.get(), flags) != 0) {
    PyErr_Clear();
    Reject(name, writable ? "is not a writable array" : "does not export a buffer");
  }
  Py_buffer* raw = buffer.release();
  TensorView view;
  view.keepalive = py::capsule(raw, [](void* p) {
    PyBuffer_Release(static_cast<Py_buffer*>(p));
    delete static_cast<Py_buffer*>(p);
  });
  if (!FormatToDataType(raw->format, raw->itemsize, &view.dtype))
    Reject(name, std::string("has unsupported element format '") +
                     (raw->format ? raw->format : "") + "' (supported: " + kSupported + ")");
  for (int i = 0; i < raw->ndim; ++i) view.shape.push_back(raw->shape[i]);
  CheckShape(name, view);
  if (!PyBuffer_IsContiguous(raw, 'C')) Reject(name, NotContiguous(view.shape));
  view.data = raw->buf;
  return view;
}

// Strides in elements, as DLPack gives them. An empty tensor is contiguous whatever
// its strides (torch gives a transposed empty one the strides of its base); size-1
// dimensions may have any stride. Called on a validated shape, so `expected` never
// overflows.
bool IsCContiguous(const DLTensor& t) {
  if (t.strides == nullptr) return true;
  for (int i = 0; i < t.ndim; ++i) {
    if (t.shape[i] == 0) return true;
  }
  int64_t expected = 1;
  for (int i = t.ndim - 1; i >= 0; --i) {
    if (t.shape[i] != 1 && t.strides[i] != expected) return false;
    expected *= t.shape[i];
  }
  return true;
}

// The DLPack device type of `obj` (kDLCPU when it does not say).
int32_t DLPackDeviceType(const py::handle& obj) {
  if (!py::hasattr(obj, "__dlpack_device__")) return kDLCPU;
  py::tuple device = obj.attr("__dlpack_device__")();
  return device[0].cast<int32_t>();
}

// Takes over the tensor of an unused "dltensor" capsule (the capsule is renamed, as
// DLPack consumers do, so that it no longer deletes it) and views it.
TensorView FromCapsule(const py::handle& capsule, const std::string& name, const char* source) {
  auto* managed = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule.ptr(), "dltensor"));
  if (managed == nullptr) {
    PyErr_Clear();
    Reject(name, std::string(source) + " is not an unused 'dltensor' capsule");
  }
  PyCapsule_SetName(capsule.ptr(), "used_dltensor");
  TensorView view;
  view.keepalive = py::capsule(managed, [](void* p) {
    auto* m = static_cast<DLManagedTensor*>(p);
    if (m->deleter) m->deleter(m);
  });
  const DLTensor& t = managed->dl_tensor;
  if (t.device.device_type == kDLCUDA) {
    if (!DeviceTensorsSupported())
      Reject(name,
             "is in GPU memory; this build of braid has no GPU data plane "
             "(built without CUDA and NCCL)");
    view.device = t.device.device_id;
  } else if (t.device.device_type != kDLCPU) {
    Reject(name, "is on DLPack device type " + std::to_string(t.device.device_type) +
                     "; braid handles host (CPU) and CUDA tensors");
  }
  if (!DLTypeToDataType(t.dtype, &view.dtype)) {
    Reject(name, "has an unsupported DLPack dtype (code " + std::to_string(t.dtype.code) + ", " +
                     std::to_string(t.dtype.bits) + " bits, " + std::to_string(t.dtype.lanes) +
                     " lanes; supported: " + kSupported + ")");
  }
  if (t.ndim < 0 || (t.ndim > 0 && t.shape == nullptr)) Reject(name, "has no valid shape");
  view.shape.assign(t.shape, t.shape + t.ndim);
  CheckShape(name, view);
  if (!IsCContiguous(t)) Reject(name, NotContiguous(view.shape));
  view.data = static_cast<char*>(t.data) + t.byte_offset;
  return view;
}

TensorView FromDLPack(const py::handle& obj, const std::string& name) {
  // A GPU tensor is exported without synchronisation (stream -1): the engine orders
  // its work after the stream the caller names.
  const bool cuda = DLPackDeviceType(obj) == kDLCUDA;
  py::object capsule =
      cuda ? obj.attr("__dlpack__")(py::arg("stream") = -1) : obj.attr("__dlpack__")();
  return FromCapsule(capsule, name, "what __dlpack__ returned");
}

}  // namespace

TensorView ViewOf(const py::handle& obj, const std::string& name, bool writable) {
  if (PyObject_CheckBuffer(obj.ptr())) return FromBuffer(obj, name, writable);
  // An exported tensor (torch.utils.dlpack.to_dlpack): braid.torch passes host
  // tensors so, which skips the Python-level __dlpack__ and __dlpack_device__.
  if (PyCapsule_CheckExact(obj.ptr())) return FromCapsule(obj, name, "the capsule");
  if (py::hasattr(obj, "__dlpack__")) return FromDLPack(obj, name);
  Reject(name, std::string("is a ") + py::str(py::type::handle_of(obj)).cast<std::string>() +
                   ", which supports neither the buffer protocol nor __dlpack__");
}

const char* BufferFormat(DataType dtype) {
  switch (dtype) {
    case DataType::kUInt8:
      return "B";
    case DataType::kInt8:
      return "b";
    case DataType::kInt32:
      return "i";
    case DataType::kInt64:
      return "q";
    case DataType::kFloat16:
      return "e";
    case DataType::kFloat32:
      return "f";
    case DataType::kFloat64:
      return "d";
    case DataType::kInt16:
      return "h";
    case DataType::kBool:
      return "?";
    default:
      ThrowStatus(
          InvalidArgument(std::string("no buffer format for dtype ") + DataTypeName(dtype)));
  }
}

BufferView FlatView(const py::handle& obj, const std::string& name, bool writable, uintptr_t stream,
                    std::vector<py::object>* keep) {
  TensorView t = ViewOf(obj, name, writable);
  BufferView v;
  v.data = t.data;
  v.count = 1;
  for (int64_t d : t.shape) v.count *= d;
  v.dtype = t.dtype;
  v.device = t.device;
  v.stream = reinterpret_cast<void*>(stream);
  keep->push_back(py::reinterpret_borrow<py::object>(obj));
  keep->push_back(std::move(t.keepalive));
  return v;
}

}  // namespace braid::python
