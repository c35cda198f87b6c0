// A view of a flat buffer: what a backend works on. It owns nothing.
#pragma once

#include <cstdint>

#include "common/types.h"

namespace braid {

struct BufferView {
  void* data = nullptr;
  int64_t count = 0;  // elements, not bytes
  DataType dtype = DataType::kFloat32;
  int device = kCpuDevice;
  void* stream = nullptr;  // cudaStream_t on a GPU, unused on the host

  int64_t bytes() const { return count * static_cast<int64_t>(DataTypeSize(dtype)); }
  BufferView Slice(int64_t offset, int64_t n) const {
    BufferView v = *this;
    v.data = static_cast<char*>(data) + offset * static_cast<int64_t>(DataTypeSize(dtype));
    v.count = n;
    return v;
  }
};

}  // namespace braid
