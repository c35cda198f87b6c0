// Exact top-k and its segmented forms: checks, then the host kernels or the
// registered GPU ones. ThresholdTopK is in threshold.cc, RandomK in random_k.cc.
#include "ops/compress/selection.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "ops/compress/host_kernels.h"
#include "ops/compress/validate.h"

namespace braid::compress {
namespace {

Status RunTopK(const CompressDeviceKernels* kernels, const BufferView& x, int64_t k,
               const DeviceSelectionOut& out, int threads) {
  if (k == 0) return Status::OK();
  if (kernels == nullptr) return host::TopK(ValuesOf(x), k, out, threads);
  return kernels->topk(x.device, ValuesOf(x), k, out, x.stream);
}

Status CheckOffsets(const char* op, const BufferView& x, const std::vector<int64_t>& offsets) {
  bool ok = !offsets.empty() && offsets.front() == 0 && offsets.back() == x.count;
  for (size_t i = 1; ok && i < offsets.size(); ++i) ok = offsets[i - 1] <= offsets[i];
  if (ok) return Status::OK();
  return InvalidArgument(std::string("compress '") + op +
                         "': the segment offsets must rise from 0 to the element count " +
                         std::to_string(x.count));
}

// The output slice of the entries from position `pos` on, for a segment at `base`.
DeviceSelectionOut SliceOut(const BufferView& indices, const BufferView& values, int64_t pos,
                            int64_t base) {
  DeviceSelectionOut out = OutputOf(indices, values);
  out.indices = static_cast<char*>(indices.data) + pos * DataTypeSize(indices.dtype);
  if (values.data != nullptr) {
    out.values = static_cast<char*>(values.data) + pos * DataTypeSize(values.dtype);
  }
  out.index_base = base;
  return out;
}

// How many of the k ascending indices fall in each segment.
void CountPerSegment(const std::vector<int64_t>& offsets, const std::vector<int64_t>& sorted,
                     std::vector<int64_t>* counts) {
  counts->assign(offsets.size() - 1, 0);
  for (size_t s = 0; s + 1 < offsets.size(); ++s) {
    auto lo = std::lower_bound(sorted.begin(), sorted.end(), offsets[s]);
    auto hi = std::lower_bound(lo, sorted.end(), offsets[s + 1]);
    (*counts)[s] = hi - lo;
  }
}

// The k indices TopK wrote, as int64 on the host (copied back from a GPU).
Status ReadIndices(const CompressDeviceKernels* kernels, const BufferView& x,
                   const BufferView& indices, int64_t k, std::vector<int64_t>* out) {
  const size_t size = DataTypeSize(indices.dtype);
  std::vector<char> raw(static_cast<size_t>(k) * size);
  if (kernels == nullptr) {
    std::copy_n(static_cast<const char*>(indices.data), raw.size(), raw.data());
  } else if (k > 0) {
    BRAID_RETURN_IF_ERROR(kernels->copy_to_host(x.device, raw.data(), indices.data,
                                                static_cast<int64_t>(raw.size()), x.stream));
  }
  out->resize(k);
  for (int64_t j = 0; j < k; ++j) {
    (*out)[j] = size == 8 ? reinterpret_cast<const int64_t*>(raw.data())[j]
                          : reinterpret_cast<const int32_t*>(raw.data())[j];
  }
  return Status::OK();
}

}  // namespace

Status TopK(const BufferView& x, int64_t k, const BufferView& indices, const BufferView& values,
            const SelectOptions& options) {
  const char* op = "topk";
  BRAID_RETURN_IF_ERROR(CheckValues(op, x));
  BRAID_RETURN_IF_ERROR(CheckK(op, x, k));
  BRAID_RETURN_IF_ERROR(CheckOutputs(op, x, indices, values, k));
  const CompressDeviceKernels* kernels = nullptr;
  BRAID_RETURN_IF_ERROR(KernelsFor(op, x, &kernels));
  return RunTopK(kernels, x, k, OutputOf(indices, values), options.num_threads);
}

Status SegmentedTopK(const BufferView& x, const std::vector<int64_t>& offsets,
                     const std::vector<int64_t>& k_per_segment, const BufferView& indices,
                     const BufferView& values, std::vector<int64_t>* selected_per_segment,
                     const SelectOptions& options) {
  const char* op = "segmented topk";
  BRAID_RETURN_IF_ERROR(CheckValues(op, x));
  BRAID_RETURN_IF_ERROR(CheckOffsets(op, x, offsets));
  if (k_per_segment.size() + 1 != offsets.size()) {
    return InvalidArgument("compress 'segmented topk': " + std::to_string(k_per_segment.size()) +
                           " values of k for " + std::to_string(offsets.size() - 1) + " segments");
  }
  int64_t total = 0;
  for (size_t s = 0; s < k_per_segment.size(); ++s) {
    BufferView segment = x.Slice(offsets[s], offsets[s + 1] - offsets[s]);
    BRAID_RETURN_IF_ERROR(CheckK(op, segment, k_per_segment[s]));
    total += k_per_segment[s];
  }
  BRAID_RETURN_IF_ERROR(CheckOutputs(op, x, indices, values, total));
  const CompressDeviceKernels* kernels = nullptr;
  BRAID_RETURN_IF_ERROR(KernelsFor(op, x, &kernels));
  int64_t pos = 0;
  for (size_t s = 0; s < k_per_segment.size(); ++s) {
    const BufferView segment = x.Slice(offsets[s], offsets[s + 1] - offsets[s]);
    const DeviceSelectionOut out = SliceOut(indices, values, pos, offsets[s]);
    BRAID_RETURN_IF_ERROR(RunTopK(kernels, segment, k_per_segment[s], out, options.num_threads));
    pos += k_per_segment[s];
  }
  if (selected_per_segment != nullptr) *selected_per_segment = k_per_segment;
  return Status::OK();
}

Status SegmentedTopKGlobal(const BufferView& x, const std::vector<int64_t>& offsets, int64_t k,
                           const BufferView& indices, const BufferView& values,
                           std::vector<int64_t>* selected_per_segment,
                           const SelectOptions& options) {
  const char* op = "segmented topk";
  BRAID_RETURN_IF_ERROR(CheckValues(op, x));
  BRAID_RETURN_IF_ERROR(CheckOffsets(op, x, offsets));
  BRAID_RETURN_IF_ERROR(CheckK(op, x, k));
  BRAID_RETURN_IF_ERROR(CheckOutputs(op, x, indices, values, k));
  const CompressDeviceKernels* kernels = nullptr;
  BRAID_RETURN_IF_ERROR(KernelsFor(op, x, &kernels));
  BRAID_RETURN_IF_ERROR(RunTopK(kernels, x, k, OutputOf(indices, values), options.num_threads));
  if (selected_per_segment == nullptr) return Status::OK();
  std::vector<int64_t> sorted;
  BRAID_RETURN_IF_ERROR(ReadIndices(kernels, x, indices, k, &sorted));
  CountPerSegment(offsets, sorted, selected_per_segment);
  return Status::OK();
}

Status KForDensity(const std::vector<int64_t>& offsets, double density,
                   std::vector<int64_t>* k_per_segment) {
  if (!(density >= 0.0 && density <= 1.0)) {
    return InvalidArgument("compress: the density must be in [0, 1], not " +
                           std::to_string(density));
  }
  k_per_segment->clear();
  for (size_t s = 0; s + 1 < offsets.size(); ++s) {
    const int64_t len = offsets[s + 1] - offsets[s];
    const auto k = static_cast<int64_t>(std::ceil(density * static_cast<double>(len)));
    k_per_segment->push_back(std::min(len, std::max<int64_t>(k, 0)));
  }
  return Status::OK();
}

}  // namespace braid::compress
