#include "ops/restart/pack_memory.h"

#include <cstring>

#include "collectives/device_plane.h"
#include "ops/restart/device_kernels.h"

namespace braid::restart {
namespace {

template <typename T>
void ScaleCopyAs(void* dst, const void* src, int64_t n, double scale) {
  T* __restrict d = static_cast<T*>(dst);
  const T* __restrict s = static_cast<const T*>(src);
  const T f = static_cast<T>(scale);
  for (int64_t i = 0; i < n; ++i) d[i] = s[i] * f;
}

class HostPackMemory : public PackMemory {
 public:
  explicit HostPackMemory(DataType dtype) : PackMemory(dtype) {}

  Status Reserve(int64_t count) override {
    size_t bytes = static_cast<size_t>(count) * elem_;
    if (buffer_.size() < bytes) buffer_.resize(bytes);
    return Status::OK();
  }
  void* data() override { return buffer_.data(); }

  Status Gather(const std::vector<BufferView>& from, void* dst, int64_t offset) override {
    for (const BufferView& v : from) {
      if (v.count > 0) std::memcpy(At(dst, offset), v.data, static_cast<size_t>(v.bytes()));
      offset += v.count;
    }
    return Status::OK();
  }

  Status Scatter(int64_t offset, double scale, const std::vector<BufferView>& to) override {
    for (const BufferView& v : to) {
      if (dtype_ == DataType::kFloat64) {
        ScaleCopyAs<double>(v.data, At(data(), offset), v.count, scale);
      } else {
        ScaleCopyAs<float>(v.data, At(data(), offset), v.count, scale);
      }
      offset += v.count;
    }
    return Status::OK();
  }

  Status WriteFromHost(int64_t offset, const void* src, int64_t count, void*) override {
    std::memcpy(At(data(), offset), src, static_cast<size_t>(count) * elem_);
    return Status::OK();
  }
  Status ReadToHost(int64_t offset, void* dst, int64_t count, void*) override {
    std::memcpy(dst, At(data(), offset), static_cast<size_t>(count) * elem_);
    return Status::OK();
  }

  Status SlowMoUpdate(const std::vector<BufferView>& params, const BufferView& x_old,
                      const BufferView& s, const SlowMoCoefficients& c) override {
    int64_t offset = 0;
    for (const BufferView& v : params) {
      SlowMoSegment g{
          v.data, At(data(), offset), At(x_old.data, offset), At(s.data, offset), v.count, dtype_};
      BRAID_RETURN_IF_ERROR(SlowMoUpdateHost(g, c));
      offset += v.count;
    }
    return Status::OK();
  }

 private:
  std::vector<char> buffer_;
};

// The same steps through the registered kernels; the packed buffer is device memory.
class DevicePackMemory : public PackMemory {
 public:
  DevicePackMemory(int device, DataType dtype, const RestartDeviceKernels* k)
      : PackMemory(dtype), device_(device), k_(k) {}
  ~DevicePackMemory() override {
    if (memory_ != nullptr) k_->release(device_, memory_);
  }

  Status Reserve(int64_t count) override {
    if (count <= capacity_) return Status::OK();
    if (memory_ != nullptr) k_->release(device_, memory_);
    memory_ = nullptr;
    capacity_ = 0;
    BRAID_RETURN_IF_ERROR(k_->allocate(device_, count * static_cast<int64_t>(elem_), &memory_));
    capacity_ = count;
    return Status::OK();
  }
  void* data() override { return memory_; }

  Status Gather(const std::vector<BufferView>& from, void* dst, int64_t offset) override {
    for (const BufferView& v : from) {
      if (v.count > 0) {
        BRAID_RETURN_IF_ERROR(
            k_->scale_copy(device_, At(dst, offset), v.data, v.count, dtype_, 1.0, v.stream));
      }
      offset += v.count;
    }
    return Status::OK();
  }

  Status Scatter(int64_t offset, double scale, const std::vector<BufferView>& to) override {
    for (const BufferView& v : to) {
      if (v.count > 0) {
        BRAID_RETURN_IF_ERROR(
            k_->scale_copy(device_, v.data, At(memory_, offset), v.count, dtype_, scale, v.stream));
      }
      offset += v.count;
    }
    return Status::OK();
  }

  Status WriteFromHost(int64_t offset, const void* src, int64_t count, void* stream) override {
    return k_->copy_from_host(device_, At(memory_, offset), src,
                              count * static_cast<int64_t>(elem_), stream);
  }
  Status ReadToHost(int64_t offset, void* dst, int64_t count, void* stream) override {
    return k_->copy_to_host(device_, dst, At(memory_, offset), count * static_cast<int64_t>(elem_),
                            stream);
  }

  Status SlowMoUpdate(const std::vector<BufferView>& params, const BufferView& x_old,
                      const BufferView& s, const SlowMoCoefficients& c) override {
    int64_t offset = 0;
    for (const BufferView& v : params) {
      SlowMoSegment g{
          v.data, At(memory_, offset), At(x_old.data, offset), At(s.data, offset), v.count, dtype_};
      if (v.count > 0) BRAID_RETURN_IF_ERROR(k_->slowmo_update(device_, g, c, v.stream));
      offset += v.count;
    }
    return Status::OK();
  }

 private:
  int device_;
  const RestartDeviceKernels* k_;
  void* memory_ = nullptr;
  int64_t capacity_ = 0;
};

}  // namespace

Status PackMemory::Create(int device, DataType dtype, const std::string& op_name,
                          std::unique_ptr<PackMemory>* out) {
  if (device == kCpuDevice) {
    out->reset(new HostPackMemory(dtype));
    return Status::OK();
  }
  const RestartDeviceKernels* k = RestartDeviceKernelsOrNull();
  Status loaded;
  if (k == nullptr) {
    // The kernels come with the CUDA plugin, which registers them when it loads
    // (normally at the first GPU collective, which may not have happened yet).
    DevicePlugin unused;
    loaded = LoadDevicePlugin(&unused);
    k = RestartDeviceKernelsOrNull();
  }
  if (k == nullptr) {
    return InvalidArgument("restart '" + op_name + "': the buffers are on " + DeviceName(device) +
                           ", but no GPU kernels for the restart ops are available" +
                           (loaded.ok() ? std::string() : " (" + loaded.message() + ")") +
                           "; use host buffers");
  }
  out->reset(new DevicePackMemory(device, dtype, k));
  return Status::OK();
}

}  // namespace braid::restart
