// The error memory's two kernels (memory.h) on the host, and the dispatch to the
// registered GPU ones. Built with -ffp-contract=off (ops/CMakeLists.txt): the pass
// must round like the GPU kernel, which uses explicitly rounded operations.
#include "ops/compress/memory.h"

#include <cstring>
#include <string>

#include "common/half.h"
#include "ops/compress/dtype_dispatch.h"
#include "ops/compress/parallel.h"
#include "ops/compress/validate.h"

namespace braid::compress {
namespace {

// e = (e + a*g) + b*d over [begin, end) in T's arithmetic (float for the 16-bit
// types, through load/store conversions).
template <typename T, typename Load, typename Store>
void FeedbackRange(void* e, const void* g, const void* d, int64_t begin, int64_t end, T a, T b,
                   Load load, Store store) {
  using Raw = decltype(store(T{}));
  auto* ev = static_cast<Raw*>(e);
  const auto* gv = static_cast<const Raw*>(g);
  const auto* dv = static_cast<const Raw*>(d);
  if (dv == nullptr) {
    for (int64_t i = begin; i < end; ++i) ev[i] = store(load(ev[i]) + a * load(gv[i]));
  } else {
    for (int64_t i = begin; i < end; ++i) {
      ev[i] = store((load(ev[i]) + a * load(gv[i])) + b * load(dv[i]));
    }
  }
}

void HostFeedback(void* e, const void* g, const void* d, int64_t n, DataType dtype, double a,
                  double b, int num_threads) {
  ParallelChunks(n, ThreadsFor(n, num_threads), [&](int, int64_t lo, int64_t hi) {
    const auto fa = static_cast<float>(a), fb = static_cast<float>(b);
    switch (dtype) {
      case DataType::kFloat64:
        FeedbackRange<double>(
            e, g, d, lo, hi, a, b, [](double v) { return v; }, [](double v) { return v; });
        break;
      case DataType::kFloat32:
        FeedbackRange<float>(
            e, g, d, lo, hi, fa, fb, [](float v) { return v; }, [](float v) { return v; });
        break;
      case DataType::kFloat16:
        FeedbackRange<float>(
            e, g, d, lo, hi, fa, fb, [](uint16_t v) { return HalfToFloat(v); },
            [](float v) { return FloatToHalf(v); });
        break;
      default:
        FeedbackRange<float>(
            e, g, d, lo, hi, fa, fb, [](uint16_t v) { return BFloat16ToFloat(v); },
            [](float v) { return FloatToBFloat16(v); });
        break;
    }
  });
}

template <typename Index>
Status HostExtract(void* e, int64_t n, size_t size, const Index* idx, int64_t count, void* values) {
  for (int64_t j = 0; j < count; ++j) {
    if (idx[j] < 0 || idx[j] >= n) {
      return InvalidArgument("compress 'extract sent': index " + std::to_string(idx[j]) +
                             " at position " + std::to_string(j) + " outside [0, " +
                             std::to_string(n) + ")");
    }
  }
  auto* ev = static_cast<char*>(e);
  auto* out = static_cast<char*>(values);
  for (int64_t j = 0; j < count; ++j) {
    char* slot = ev + static_cast<size_t>(idx[j]) * size;
    if (out != nullptr) std::memcpy(out + j * size, slot, size);
    std::memset(slot, 0, size);  // +0.0 in every float format
  }
  return Status::OK();
}

Status CheckSame(const char* what, const BufferView& e, const BufferView& v) {
  if (v.count == e.count && v.dtype == e.dtype && v.device == e.device &&
      (v.count == 0 || v.data != nullptr)) {
    return Status::OK();
  }
  return InvalidArgument(std::string("compress 'error feedback': ") + what +
                         " must match the memory (" + std::to_string(e.count) + " " +
                         DataTypeName(e.dtype) + " on " + DeviceName(e.device) + ")");
}

}  // namespace

Status ErrorFeedback(const BufferView& e, const BufferView& g, const BufferView& d, double a,
                     double b, int num_threads) {
  const char* op = "error feedback";
  BRAID_RETURN_IF_ERROR(CheckValues(op, e));
  BRAID_RETURN_IF_ERROR(CheckSame("the gradient", e, g));
  const bool has_d = d.data != nullptr;
  if (has_d) BRAID_RETURN_IF_ERROR(CheckSame("the third buffer", e, d));
  const CompressDeviceKernels* kernels = nullptr;
  BRAID_RETURN_IF_ERROR(KernelsFor(op, e, &kernels));
  if (e.count == 0) return Status::OK();
  const void* dd = has_d ? d.data : nullptr;
  if (kernels != nullptr) {
    return kernels->error_feedback(e.device, e.data, g.data, dd, e.count, e.dtype, a, b, e.stream);
  }
  HostFeedback(e.data, g.data, dd, e.count, e.dtype, a, b, num_threads);
  return Status::OK();
}

Status ExtractSent(const BufferView& e, const BufferView& indices, const BufferView& values) {
  const char* op = "extract sent";
  BRAID_RETURN_IF_ERROR(CheckValues(op, e));
  BRAID_RETURN_IF_ERROR(CheckOutputs(op, e, indices, values, indices.count));
  const CompressDeviceKernels* kernels = nullptr;
  BRAID_RETURN_IF_ERROR(KernelsFor(op, e, &kernels));
  if (indices.count == 0) return Status::OK();
  if (kernels != nullptr) {
    return kernels->extract_sent(e.device, e.data, e.count, e.dtype, indices.data, indices.dtype,
                                 indices.count, values.data, e.stream);
  }
  const size_t size = DataTypeSize(e.dtype);
  if (indices.dtype == DataType::kInt64) {
    return HostExtract(e.data, e.count, size, static_cast<const int64_t*>(indices.data),
                       indices.count, values.data);
  }
  return HostExtract(e.data, e.count, size, static_cast<const int32_t*>(indices.data),
                     indices.count, values.data);
}

}  // namespace braid::compress
