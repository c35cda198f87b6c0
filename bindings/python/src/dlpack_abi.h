// The DLPack C ABI (v0.x structs, as exchanged through "dltensor" capsules). Declared
// here to avoid a build dependency on dlpack.h; the layout is fixed by the standard.
#pragma once

#include <cstdint>

namespace braid::python {

constexpr int32_t kDLCPU = 1;
constexpr int32_t kDLCUDA = 2;
enum DLTypeCode : uint8_t { kDLInt = 0, kDLUInt = 1, kDLFloat = 2, kDLBfloat = 4, kDLBool = 6 };

struct DLDevice {
  int32_t device_type;
  int32_t device_id;
};

struct DLDataType {
  uint8_t code;
  uint8_t bits;
  uint16_t lanes;
};

struct DLTensor {
  void* data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t* shape;
  int64_t* strides;
  uint64_t byte_offset;
};

struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor* self);
};

}  // namespace braid::python
