// The C API of the sparse collectives over the default engine
// (include/braid/braid.h, docs/sparse.md).
#include <string>
#include <vector>

#include "bindings/c/default_engine.h"
#include "braid/braid.h"
#include "core/stats.h"

namespace {

using braid::Status;
using braid::capi::Report;

// The parts of a sparse request from C tensors; `dense` may be null (allgather,
// which passes its shape in `dense_shape`).
Status PartsOf(const char* name, const braid_tensor_t* indices, const braid_tensor_t* values,
               const braid_tensor_t* dense, braid::SparseParts* parts) {
  braid::RequestMeta index_meta, value_meta, dense_meta;
  const std::string label = name == nullptr ? std::string() : name;
  BRAID_RETURN_IF_ERROR(
      braid::capi::DescribeTensor((label + " (indices)").c_str(), indices, &index_meta));
  BRAID_RETURN_IF_ERROR(
      braid::capi::DescribeTensor((label + " (values)").c_str(), values, &value_meta));
  parts->index_dtype = index_meta.dtype;
  parts->index_shape = index_meta.shape;
  parts->index_device = index_meta.device;
  parts->value_dtype = value_meta.dtype;
  parts->value_shape = value_meta.shape;
  parts->value_device = value_meta.device;
  if (dense != nullptr) {
    BRAID_RETURN_IF_ERROR(
        braid::capi::DescribeTensor((label + " (dense)").c_str(), dense, &dense_meta));
    parts->dense_shape = dense_meta.shape;
    parts->dense_dtype = dense_meta.dtype;
    parts->dense_device = dense_meta.device;
  }
  return Status::OK();
}

}  // namespace

extern "C" {

int braid_sparse_allreduce_async(const char* name, const braid_tensor_t* indices,
                                 const braid_tensor_t* values, const braid_tensor_t* dense, int op,
                                 int flags, braid_handle_t* handle) {
  return braid::capi::CallC("braid_sparse_allreduce_async", [&]() -> int {
    if (name == nullptr) return Report(braid::InvalidArgument("the tensor name is NULL"));
    if (dense == nullptr) {
      return Report(braid::InvalidArgument(std::string("sparse_allreduce of '") + name +
                                           "': the dense tensor is NULL"));
    }
    if (!braid::IsValidReduceOp(op) || (flags & ~BRAID_SPARSE_DENSE_FALLBACK) != 0) {
      return Report(braid::InvalidArgument(std::string("sparse_allreduce of '") + name +
                                           "': unknown op " + std::to_string(op) + " or flags " +
                                           std::to_string(flags)));
    }
    braid::SparseParts parts;
    braid::Request r;
    Status st = PartsOf(name, indices, values, dense, &parts);
    if (st.ok())
      st = braid::DescribeSparse(name, braid::Collective::kSparseAllreduce, parts, &r.meta);
    if (!st.ok()) return Report(st);
    r.meta.op = static_cast<braid::ReduceOp>(op);
    r.meta.dense_fallback = (flags & BRAID_SPARSE_DENSE_FALLBACK) != 0;
    r.indices = indices->data;
    r.input = values->data;
    r.output = dense->data;
    r.stream = values->stream;
    return braid::capi::SubmitToDefault(std::move(r), handle);
  });
}

int braid_sparse_allgather_async(const char* name, const braid_tensor_t* indices,
                                 const braid_tensor_t* values, int dense_ndim,
                                 const int64_t* dense_shape, braid_handle_t* handle) {
  return braid::capi::CallC("braid_sparse_allgather_async", [&]() -> int {
    if (name == nullptr) return Report(braid::InvalidArgument("the tensor name is NULL"));
    if (dense_ndim < 1 || dense_shape == nullptr) {
      return Report(braid::InvalidArgument(std::string("sparse_allgather of '") + name +
                                           "': the dense shape needs at least one dimension"));
    }
    braid::SparseParts parts;
    braid::Request r;
    Status st = PartsOf(name, indices, values, nullptr, &parts);
    parts.dense_shape.assign(dense_shape, dense_shape + dense_ndim);
    if (st.ok())
      st = braid::DescribeSparse(name, braid::Collective::kSparseAllgather, parts, &r.meta);
    if (!st.ok()) return Report(st);
    r.indices = indices->data;
    r.input = values->data;
    r.stream = values->stream;
    return braid::capi::SubmitToDefault(std::move(r), handle);
  });
}

int braid_handle_sparse_output(braid_handle_t handle, const void** indices, const void** values,
                               int64_t* total_pairs, const int64_t** rank_pairs) {
  return braid::capi::CallC("braid_handle_sparse_output", [&]() -> int {
    if (handle == nullptr || indices == nullptr || values == nullptr || total_pairs == nullptr ||
        rank_pairs == nullptr) {
      return Report(braid::InvalidArgument("braid_handle_sparse_output: a NULL argument"));
    }
    const braid::Handle& h = *handle->handle;
    if (!h.Poll()) {
      return Report(
          braid::InvalidArgument("braid_handle_sparse_output: the operation has not finished"));
    }
    Status st = h.status();
    if (!st.ok()) return Report(st);
    if (h.pairs().empty()) {
      return Report(
          braid::InvalidArgument("braid_handle_sparse_output: not a sparse allgather's handle"));
    }
    *indices = h.output_data();
    *values = h.output_data() + h.values_offset();
    *total_pairs = h.output_shape().empty() ? 0 : h.output_shape()[0];
    *rank_pairs = h.pairs().data();
    return Report(Status::OK());
  });
}

int braid_sparse_stats(int collective, int64_t* index_bytes) {
  return braid::capi::CallC("braid_sparse_stats", [&]() -> int {
    if (collective != BRAID_SPARSE_ALLREDUCE && collective != BRAID_SPARSE_ALLGATHER) {
      return Report(braid::InvalidArgument("braid_sparse_stats: not a sparse collective: " +
                                           std::to_string(collective)));
    }
    braid::CollectiveCounts c = braid::ReadStats(static_cast<braid::Collective>(collective));
    if (index_bytes != nullptr) *index_bytes = c.index_bytes;
    return Report(Status::OK());
  });
}

}  // extern "C"
