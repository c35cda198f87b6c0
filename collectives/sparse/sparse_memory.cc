#include "collectives/sparse/sparse_memory.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "collectives/cpu/scatter_add.h"

namespace braid {
namespace {

class HostMemory : public SparseMemory {
 public:
  HostMemory(std::function<char*(int64_t)> staging, int64_t capacity)
      : staging_(std::move(staging)), capacity_(capacity) {}
  int device() const override { return kCpuDevice; }
  void* stream() const override { return nullptr; }

  Status FindIndexOutOfRange(const void* indices, DataType index_dtype, int64_t count,
                             int64_t length, int64_t* position, int64_t* value) override {
    *position = cpu::FindIndexOutOfRange(indices, index_dtype, count, length, value);
    return Status::OK();
  }
  Status Zero(void* data, int64_t bytes) override {
    if (bytes > 0) std::memset(data, 0, static_cast<size_t>(bytes));
    return Status::OK();
  }
  Status ScatterAdd(void* dense, int64_t length, int64_t row, DataType dtype, const void* indices,
                    DataType index_dtype, const void* values, int64_t count,
                    double factor) override {
    cpu::ScatterAdd(dense, length, row, dtype, indices, index_dtype, values, count, factor);
    return Status::OK();
  }
  Status CopyBytes(const std::vector<DeviceCopy>& copies) override {
    for (const DeviceCopy& c : copies) {
      if (c.count > 0 && c.dst != c.src) std::memcpy(c.dst, c.src, static_cast<size_t>(c.count));
    }
    return Status::OK();
  }
  Status MessageBuffer(int64_t bytes, void** data) override {
    // Grows only: the gathered messages of the next steps usually fit.
    if (static_cast<size_t>(bytes) > message_.size()) message_.resize(static_cast<size_t>(bytes));
    *data = message_.data();
    return Status::OK();
  }
  Status Allocate(int64_t bytes, std::shared_ptr<void>* memory) override {
    void* p = std::malloc(static_cast<size_t>(std::max<int64_t>(bytes, 1)));
    if (p == nullptr) {
      return Status(StatusCode::kOutOfMemory,
                    "could not allocate " + std::to_string(bytes) + " bytes of host memory");
    }
    *memory = std::shared_ptr<void>(p, std::free);
    return Status::OK();
  }
  Status Staging(int64_t bytes, DataType dtype, BufferView* staging) override {
    staging->data = staging_(bytes);
    staging->count = std::min(bytes, capacity_) / static_cast<int64_t>(DataTypeSize(dtype));
    staging->dtype = dtype;
    staging->device = kCpuDevice;
    return Status::OK();
  }
  Status Finish() override { return Status::OK(); }

 private:
  std::function<char*(int64_t)> staging_;
  int64_t capacity_;
  std::vector<char> message_;
};

class DeviceMemory : public SparseMemory {
 public:
  explicit DeviceMemory(DeviceOps* ops) : ops_(ops) {}
  int device() const override { return ops_->device(); }
  void* stream() const override { return ops_->stream(); }

  Status FindIndexOutOfRange(const void* indices, DataType index_dtype, int64_t count,
                             int64_t length, int64_t* position, int64_t* value) override {
    return ops_->FindIndexOutOfRange(indices, index_dtype, count, length, position, value);
  }
  Status Zero(void* data, int64_t bytes) override { return ops_->Zero(data, bytes); }
  Status ScatterAdd(void* dense, int64_t length, int64_t row, DataType dtype, const void* indices,
                    DataType index_dtype, const void* values, int64_t count,
                    double factor) override {
    return ops_->ScatterAdd(dense, length, row, dtype, indices, index_dtype, values, count, factor);
  }
  Status CopyBytes(const std::vector<DeviceCopy>& copies) override {
    std::vector<DeviceCopy> needed;
    for (const DeviceCopy& c : copies) {
      if (c.count > 0 && c.dst != c.src) needed.push_back(c);
    }
    if (needed.empty()) return Status::OK();
    return ops_->ScaledCopies(needed, DataType::kUInt8, 1.0, 1);
  }
  Status MessageBuffer(int64_t bytes, void** data) override {
    if (bytes > message_bytes_ || !message_) {
      message_.reset();  // freed after the device is done with it (DeviceOps::Allocate)
      BRAID_RETURN_IF_ERROR(ops_->Allocate(std::max<int64_t>(bytes, 1), false, &message_));
      message_bytes_ = bytes;
    }
    *data = message_.get();
    return Status::OK();
  }
  Status Allocate(int64_t bytes, std::shared_ptr<void>* memory) override {
    return ops_->Allocate(std::max<int64_t>(bytes, 1), false, memory);
  }
  Status Staging(int64_t bytes, DataType dtype, BufferView* staging) override {
    BRAID_RETURN_IF_ERROR(ops_->FusionBuffer(bytes, &staging->data));
    staging->count = bytes / static_cast<int64_t>(DataTypeSize(dtype));
    staging->dtype = dtype;
    staging->device = ops_->device();
    staging->stream = ops_->stream();
    return Status::OK();
  }
  Status Finish() override { return ops_->Synchronize(); }

 private:
  DeviceOps* ops_;
  std::shared_ptr<void> message_;
  int64_t message_bytes_ = 0;
};

}  // namespace

std::unique_ptr<SparseMemory> HostSparseMemory(std::function<char*(int64_t)> staging,
                                               int64_t staging_capacity) {
  return std::make_unique<HostMemory>(std::move(staging), staging_capacity);
}

std::unique_ptr<SparseMemory> DeviceSparseMemory(DeviceOps* ops) {
  return std::make_unique<DeviceMemory>(ops);
}

}  // namespace braid
