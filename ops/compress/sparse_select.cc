// SparseStep's selection (sparse_step.h, step 2): which entries of the flat memory
// a rank sends, as ascending indices into the flat layout. Per tensor (scope
// tensor: k_i = min(n_i, ceil(density * n_i)) for each sparse tensor, 0 for the
// dense-flagged ones) or one k = min(S, ceil(density * S)) over the whole buffer
// (scope global; S: the elements of the sparse tensors).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "ops/compress/selection.h"
#include "ops/compress/sparse_step.h"

namespace braid::compress {
namespace {

int64_t KOf(double density, int64_t n) {
  const auto k = static_cast<int64_t>(std::ceil(density * static_cast<double>(n)));
  return std::min(n, std::max<int64_t>(k, 0));
}

template <typename Index>
void AddBaseHost(void* indices, int64_t count, int64_t base) {
  auto* p = static_cast<Index*>(indices);
  for (int64_t j = 0; j < count; ++j) p[j] = static_cast<Index>(p[j] + base);
}

}  // namespace

Status SparseStep::Select(double density, int64_t* k) {
  *k = 0;
  if (options_.scope == SelectionScope::kGlobal) return SelectGlobal(density, k);
  return SelectPerTensor(density, k);
}

Status SparseStep::SelectPerTensor(double density, int64_t* k) {
  // Segments in the order of the flat layout (SegmentedTopK wants rising offsets).
  std::vector<const Segment*> order;
  for (const Segment& s : segments_) order.push_back(&s);
  std::sort(order.begin(), order.end(),
            [](const Segment* a, const Segment* b) { return a->offset < b->offset; });
  std::vector<int64_t> offsets, ks;
  for (const Segment* s : order) {
    offsets.push_back(s->offset);
    ks.push_back(s->dense_offset >= 0 ? 0 : KOf(density, s->w.count));
  }
  offsets.push_back(total_);
  const BufferView x{memory_.data(), total_, dtype_, device_, stream_};
  const BufferView idx{indices_.data(), total_, index_dtype_, device_, stream_};
  const BufferView none{nullptr, 0, dtype_, device_, stream_};
  if (options_.selection == SelectionMethod::kRandomK) return RandomIndices(offsets, ks, -1, k);
  if (options_.selection == SelectionMethod::kTopK) {
    for (int64_t v : ks) *k += v;
    return SegmentedTopK(x, offsets, ks, idx, none, nullptr, SelectOptions{options_.num_threads});
  }
  const size_t index_size = DataTypeSize(index_dtype_);
  int64_t pos = 0;
  for (size_t i = 0; i < ks.size(); ++i) {
    if (ks[i] == 0) continue;
    const int64_t base = offsets[i];
    ThresholdOptions o;
    o.sample_fraction = options_.sample_fraction;
    o.seed = StepSeed(i);
    o.num_threads = options_.num_threads;
    ThresholdResult r;
    BufferView out = idx;
    out.data = static_cast<char*>(indices_.data()) + pos * index_size;
    out.count = ks[i];
    BRAID_RETURN_IF_ERROR(
        ThresholdTopK(x.Slice(base, offsets[i + 1] - base), ks[i], out, none, o, &r));
    if (kernels_ != nullptr) {
      BRAID_RETURN_IF_ERROR(
          kernels_->add_base(device_, out.data, index_dtype_, r.selected, base, stream_));
    } else if (index_dtype_ == DataType::kInt64) {
      AddBaseHost<int64_t>(out.data, r.selected, base);
    } else {
      AddBaseHost<int32_t>(out.data, r.selected, base);
    }
    pos += r.selected;
  }
  *k = pos;
  return Status::OK();
}

Status SparseStep::SelectGlobal(double density, int64_t* k) {
  // Over the sparse tensors alone: the start of the flat layout.
  const int64_t want = KOf(density, sparse_total_);
  const BufferView x{memory_.data(), sparse_total_, dtype_, device_, stream_};
  const BufferView idx{indices_.data(), total_, index_dtype_, device_, stream_};
  const BufferView none{nullptr, 0, dtype_, device_, stream_};
  switch (options_.selection) {
    case SelectionMethod::kRandomK:
      return RandomIndices({}, {}, want, k);
    case SelectionMethod::kTopK:
      *k = want;
      return TopK(x, want, idx, none, SelectOptions{options_.num_threads});
    default: {
      ThresholdOptions o;
      o.sample_fraction = options_.sample_fraction;
      o.seed = StepSeed(0);
      o.num_threads = options_.num_threads;
      ThresholdResult r;
      BRAID_RETURN_IF_ERROR(ThresholdTopK(x, want, idx, none, o, &r));
      *k = r.selected;
      return Status::OK();
    }
  }
}

// Random-k from (seed, step, tensor) alone: the same indices on every rank. Drawn
// on the host, then copied to a GPU.
Status SparseStep::RandomIndices(const std::vector<int64_t>& offsets,
                                 const std::vector<int64_t>& k_per_segment, int64_t global_k,
                                 int64_t* k) {
  const size_t index_size = DataTypeSize(index_dtype_);
  std::vector<char> host;
  if (global_k >= 0) {
    host.resize(static_cast<size_t>(global_k) * index_size);
    BRAID_RETURN_IF_ERROR(
        RandomKIndices(sparse_total_, global_k, StepSeed(0), index_dtype_, host.data()));
    *k = global_k;
  } else {
    int64_t pos = 0;
    for (size_t i = 0; i < k_per_segment.size(); ++i) {
      const int64_t ki = k_per_segment[i];
      if (ki == 0) continue;
      host.resize(static_cast<size_t>(pos + ki) * index_size);
      char* at = host.data() + pos * index_size;
      BRAID_RETURN_IF_ERROR(
          RandomKIndices(offsets[i + 1] - offsets[i], ki, StepSeed(i), index_dtype_, at));
      if (index_dtype_ == DataType::kInt64) {
        AddBaseHost<int64_t>(at, ki, offsets[i]);
      } else {
        AddBaseHost<int32_t>(at, ki, offsets[i]);
      }
      pos += ki;
    }
    *k = pos;
  }
  if (host.empty()) return Status::OK();
  if (kernels_ == nullptr) {
    std::memcpy(indices_.data(), host.data(), host.size());
    return Status::OK();
  }
  return kernels_->copy(device_, indices_.data(), host.data(), static_cast<int64_t>(host.size()),
                        stream_);
}

}  // namespace braid::compress
