// Host side of the batched copy: checks the entries, drops those with nothing to
// do, and launches the kernel of batched_copy_kernel.cuh for each run of up to
// kMaxEntriesPerLaunch entries, with the descriptors as kernel parameters.
#include "collectives/cuda/batched_copy.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "collectives/cuda/batched_copy_kernel.cuh"
#include "collectives/cuda/cuda_check.h"
#include "collectives/cuda/device_memory.h"

namespace braid {
namespace cuda {
namespace {

using detail::Batch;
using detail::DeviceEntry;

// Three parameter-block sizes (2, 8 and 32 KB), so that a small batch does not pay
// for copying the largest block at every launch.
constexpr int kSmallBatch = 64;
constexpr int kMediumBatch = 256;
constexpr int kLargeBatch = BatchedCopier::kMaxEntriesPerLaunch;
// Beyond this many tiles (16 GiB) blocks loop over several tiles.
constexpr int64_t kMaxGrid = int64_t{1} << 20;

static_assert(sizeof(Batch<kLargeBatch>) + sizeof(detail::ElementScaling) <= 32764,
              "kernel parameters exceed CUDA's limit");

Status BadEntry(size_t index, const std::string& what) {
  return InvalidArgument("batched copy entry " + std::to_string(index) + " " + what);
}

Status CheckEntries(const std::vector<CopyEntry>& entries, size_t element_size) {
  for (size_t i = 0; i < entries.size(); ++i) {
    const CopyEntry& e = entries[i];
    if (e.count < 0) return BadEntry(i, "has a negative count");
    if (e.count == 0) continue;
    if (e.src == nullptr || e.dst == nullptr) return BadEntry(i, "has a null pointer");
    if (reinterpret_cast<uintptr_t>(e.src) % element_size != 0 ||
        reinterpret_cast<uintptr_t>(e.dst) % element_size != 0) {
      return BadEntry(i,
                      "is not aligned to its " + std::to_string(element_size) + "-byte elements");
    }
  }
  return Status::OK();
}

// The entries with work to do, counted in `unit` bytes. A plain copy onto itself
// is no work (cpu::ScaleCopy does nothing there either).
std::vector<DeviceEntry> Collect(const std::vector<CopyEntry>& entries, int64_t unit, bool plain) {
  std::vector<DeviceEntry> work;
  work.reserve(entries.size());
  for (const CopyEntry& e : entries) {
    if (e.count == 0 || (plain && e.src == e.dst)) continue;
    work.push_back(DeviceEntry{e.src, e.dst, e.count * unit, 0});
  }
  return work;
}

template <int K, class TileOp>
Status LaunchOne(const DeviceEntry* entries, int num, const TileOp& op, cudaStream_t stream) {
  Batch<K> batch;
  const int64_t tiles = detail::FillBatch<K, TileOp>(entries, num, &batch);
  const dim3 grid(static_cast<unsigned int>(std::min(tiles, kMaxGrid)));
  // cudaLaunchKernel returns the launch's own error (bad configuration, no kernel
  // image, too many resources), where cudaGetLastError after <<<>>> could also
  // report an unrelated earlier failure.
  void* args[] = {&batch, const_cast<TileOp*>(&op)};
  BRAID_CHECK_CUDA(cudaLaunchKernel(&detail::BatchedKernel<K, TileOp>, grid, dim3(detail::kThreads),
                                    args, 0, stream));
  return Status::OK();
}

template <class TileOp>
Status LaunchAll(const std::vector<DeviceEntry>& work, const TileOp& op, cudaStream_t stream) {
  for (size_t first = 0; first < work.size(); first += kLargeBatch) {
    const int num = static_cast<int>(std::min<size_t>(kLargeBatch, work.size() - first));
    const DeviceEntry* entries = &work[first];
    if (num <= kSmallBatch) {
      BRAID_RETURN_IF_ERROR(LaunchOne<kSmallBatch>(entries, num, op, stream));
    } else if (num <= kMediumBatch) {
      BRAID_RETURN_IF_ERROR(LaunchOne<kMediumBatch>(entries, num, op, stream));
    } else {
      BRAID_RETURN_IF_ERROR(LaunchOne<kLargeBatch>(entries, num, op, stream));
    }
  }
  return Status::OK();
}

template <class Element>
Status LaunchScaled(const std::vector<DeviceEntry>& work, const detail::ElementScaling& s,
                    cudaStream_t stream) {
  return LaunchAll(work, detail::ScaleTile<Element>{detail::ElementOp<Element>{s}}, stream);
}

Status DispatchScaled(DataType dtype, const std::vector<DeviceEntry>& work,
                      const detail::ElementScaling& s, cudaStream_t stream) {
  switch (dtype) {
    case DataType::kUInt8:
      return LaunchScaled<detail::UInt8Element>(work, s, stream);
    case DataType::kInt8:
      return LaunchScaled<detail::Int8Element>(work, s, stream);
    case DataType::kInt32:
      return LaunchScaled<detail::Int32Element>(work, s, stream);
    case DataType::kInt64:
      return LaunchScaled<detail::Int64Element>(work, s, stream);
    case DataType::kFloat16:
      return LaunchScaled<detail::Float16Element>(work, s, stream);
    case DataType::kBFloat16:
      return LaunchScaled<detail::BFloat16Element>(work, s, stream);
    case DataType::kFloat32:
      return LaunchScaled<detail::Float32Element>(work, s, stream);
    case DataType::kFloat64:
      return LaunchScaled<detail::Float64Element>(work, s, stream);
    case DataType::kInt16:
      return LaunchScaled<detail::Int16Element>(work, s, stream);
    case DataType::kBool:
      break;  // never scaled (core/request.cc refuses it)
  }
  return InvalidArgument(std::string("batched copy: cannot scale ") + DataTypeName(dtype));
}

detail::ElementScaling ToElementScaling(const Scaling& scaling) {
  detail::ElementScaling s;
  s.factor = scaling.factor;
  s.apply_factor = scaling.factor != 1.0;
  s.divisor = scaling.divisor > 1 ? scaling.divisor : 1;
  s.inverse_divisor = 1.0 / static_cast<double>(s.divisor);
  return s;
}

}  // namespace

Status BatchedCopier::Create(int device, std::unique_ptr<BatchedCopier>* out) {
  int count = 0;
  BRAID_CHECK_CUDA(cudaGetDeviceCount(&count));
  if (device < 0 || device >= count) {
    return InvalidArgument("batched copy: no CUDA device " + std::to_string(device) + " (" +
                           std::to_string(count) + " visible)");
  }
  int major = 0;
  BRAID_CHECK_CUDA(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  if (major < 7) return BackendError("batched copy: needs compute capability 7.0 or newer");
  int driver = 0;
  BRAID_CHECK_CUDA(cudaDriverGetVersion(&driver));
  if (driver < 12010) {
    return BackendError("batched copy: needs a CUDA 12.1+ driver (large kernel parameters), have " +
                        std::to_string(driver));
  }
  // Fails with cudaErrorNoKernelImageForDevice when this build has no code for it.
  DeviceGuard guard(device);
  cudaFuncAttributes attributes{};
  BRAID_CHECK_CUDA(cudaFuncGetAttributes(
      &attributes, detail::BatchedKernel<kLargeBatch, detail::ScaleTile<detail::Float32Element>>));
  out->reset(new BatchedCopier(device));
  return Status::OK();
}

Status BatchedCopier::Copy(const std::vector<CopyEntry>& entries, DataType dtype, double scale,
                           cudaStream_t stream) const {
  return Copy(entries, dtype, Scaling{scale, 1}, stream);
}

Status BatchedCopier::Copy(const std::vector<CopyEntry>& entries, DataType dtype,
                           const Scaling& scaling, cudaStream_t stream) const {
  if (!IsValidDataType(static_cast<int32_t>(dtype))) {
    return InvalidArgument("batched copy: unknown dtype " +
                           std::to_string(static_cast<int32_t>(dtype)));
  }
  if (!IsFloatingPoint(dtype) && !std::isfinite(scaling.factor)) {
    return InvalidArgument("batched copy: a non-finite factor cannot scale integers");
  }
  const size_t element_size = DataTypeSize(dtype);
  BRAID_RETURN_IF_ERROR(CheckEntries(entries, element_size));
  const detail::ElementScaling s = ToElementScaling(scaling);
  const bool plain = !s.apply_factor && s.divisor == 1;
  const std::vector<DeviceEntry> work =
      Collect(entries, plain ? static_cast<int64_t>(element_size) : 1, plain);
  if (work.empty()) return Status::OK();
  DeviceGuard guard(device_);
  if (plain) return LaunchAll(work, detail::CopyTile{}, stream);
  return DispatchScaled(dtype, work, s, stream);
}

}  // namespace cuda
}  // namespace braid
