#include "ops/compress/flat_array.h"

namespace braid::compress {

Status FlatArray::Make(int device, const SparseStepDeviceKernels* kernels, int64_t bytes,
                       void* stream) {
  Reset();
  const int64_t size = bytes > 0 ? bytes : 8;  // never null: views of 0 elements stay valid
  if (kernels == nullptr) {
    host_.reset(new char[static_cast<size_t>(size)]());
    data_ = host_.get();
  } else {
    BRAID_RETURN_IF_ERROR(kernels->allocate(device, size, &data_));
    kernels_ = kernels;
    device_ = device;
    Status st = kernels->zero(device, data_, size, stream);
    if (!st.ok()) {
      Reset();
      return st;
    }
  }
  bytes_ = bytes;
  return Status::OK();
}

Status FlatArray::Reserve(int device, const SparseStepDeviceKernels* kernels, int64_t bytes,
                          void* stream) {
  if (data_ != nullptr && bytes <= bytes_ && kernels == kernels_ && device == device_) {
    return Status::OK();
  }
  return Make(device, kernels, bytes, stream);
}

void FlatArray::Reset() {
  if (kernels_ != nullptr && data_ != nullptr) kernels_->release(device_, data_);
  host_.reset();
  data_ = nullptr;
  bytes_ = 0;
  kernels_ = nullptr;
  device_ = kCpuDevice;
}

}  // namespace braid::compress
