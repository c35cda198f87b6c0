// A Python array seen as a dense host tensor: through the buffer protocol (numpy,
// memoryview) or DLPack (`__dlpack__`: torch, JAX, CuPy, ...), without compiling
// against any framework.
//
// Threading: build and destroy with the GIL held.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/buffer.h"
#include "common/types.h"

namespace braid::python {

struct TensorView {
  void* data = nullptr;
  DataType dtype = DataType::kFloat32;
  std::vector<int64_t> shape;
  int device = kCpuDevice;
  // Owns the exported buffer or DLPack tensor: keep it while the engine uses `data`.
  pybind11::object keepalive;
};

// Views `obj` (a buffer-protocol array, an object with __dlpack__, or an unused
// "dltensor" capsule, which it takes over); raises BraidInvalidArgument naming `name`
// when it is not a C-contiguous array of a supported dtype (or not writable when
// `writable`).
TensorView ViewOf(const pybind11::handle& obj, const std::string& name, bool writable);

// `obj` viewed as a flat buffer (every element, in order) on `stream` (a
// cudaStream_t as an integer; 0 for host memory). `keep` receives `obj` and the
// exported buffer, to be held while the view is used.
BufferView FlatView(const pybind11::handle& obj, const std::string& name, bool writable,
                    uintptr_t stream, std::vector<pybind11::object>* keep);

// The buffer-protocol format character of `dtype` (bfloat16 has none: throws).
const char* BufferFormat(DataType dtype);

}  // namespace braid::python
