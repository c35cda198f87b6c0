#include "collectives/sparse/sparse_exchange.h"

#include <atomic>
#include <exception>

#include "collectives/agreement.h"
#include "common/logging.h"

namespace braid {
namespace {

int64_t PadTo8(int64_t bytes) {
  return (bytes + 7) / 8 * 8;
}

int64_t Size(DataType dtype) {
  return static_cast<int64_t>(DataTypeSize(dtype));
}

// `fill` with std::bad_alloc and other exceptions turned into a Status.
template <typename Fill>
Status Guard(const char* what, Fill fill) {
  try {
    return fill();
  } catch (const std::bad_alloc&) {
    return Status(StatusCode::kOutOfMemory, std::string("out of memory for ") + what);
  } catch (const std::exception& e) {
    return Internal(std::string(what) + ": " + e.what());
  }
}

// This rank's own indices, each in range of its dense tensor, before anything is
// sent or written.
Status CheckIndices(SparseMemory* memory, const SparseGroup& group,
                    const std::vector<SparseTensor>& tensors) {
  for (const SparseTensor& t : tensors) {
    int64_t position = -1, value = 0;
    BRAID_RETURN_IF_ERROR(memory->FindIndexOutOfRange(t.indices, group.index_dtype, t.pairs,
                                                      t.length, &position, &value));
    if (position >= 0) {
      return InvalidArgument(t.what + ": index " + std::to_string(value) + " (pair " +
                             std::to_string(position) + ") is outside the dense tensor's first " +
                             "dimension [0, " + std::to_string(t.length) + ")");
    }
  }
  return Status::OK();
}

// Every rank's pair counts (rank-major), agreed with every rank's outcome so far.
Status AgreeOnPairs(ControlChannel* control, SparseMemory* memory, const Status& local,
                    const SparseGroup& group, const std::vector<SparseTensor>& tensors,
                    std::vector<int64_t>* all) {
  Status checked = local;
  if (checked.ok()) checked = CheckIndices(memory, group, tensors);
  std::vector<int64_t> mine;
  for (const SparseTensor& t : tensors) mine.push_back(t.pairs);
  return AgreeOnCounts(control, checked, mine, all);
}

BufferView Bytes(SparseMemory* memory, void* data, int64_t bytes) {
  BufferView v;
  v.data = data;
  v.count = bytes;
  v.dtype = DataType::kUInt8;
  v.device = memory->device();
  v.stream = memory->stream();
  return v;
}

int64_t DenseBytes(const SparseGroup& group, const SparseTensor& t) {
  return t.length * t.row * Size(group.value_dtype);
}

// Step 2: the dense tensors hold this rank's pairs, then are allreduced.
Status RunDense(ControlChannel* control, Backend* backend, SparseMemory* memory,
                const SparseGroup& group, const std::vector<SparseTensor>& tensors) {
  int64_t total = 0;
  std::vector<BufferView> views;
  Status prepared;
  for (const SparseTensor& t : tensors) {
    BufferView v = Bytes(memory, t.dense, DenseBytes(group, t));
    v.dtype = group.value_dtype;
    v.count = t.length * t.row;
    views.push_back(v);
    total += v.bytes();
    if (prepared.ok()) prepared = memory->Zero(t.dense, v.bytes());
    if (prepared.ok()) {
      prepared = memory->ScatterAdd(t.dense, t.length, t.row, group.value_dtype, t.indices,
                                    group.index_dtype, t.values, t.pairs, 1.0);
    }
  }
  BufferView staging;
  if (prepared.ok()) {
    prepared = Guard("the fusion buffer",
                     [&] { return memory->Staging(total, group.value_dtype, &staging); });
  }
  if (prepared.ok()) prepared = backend->Prepare(total);
  BRAID_RETURN_IF_ERROR(AgreeOnStatus(control, prepared));
  ReduceScaling scaling;
  if (group.op == ReduceOp::kAverage) scaling.postscale = 1.0 / control->size();
  BRAID_RETURN_IF_ERROR(backend->AllreduceScaled(views, ReduceOp::kSum, staging, scaling));
  return memory->Finish();
}

// Step 3: one allgatherv of every rank's message, then the scatter-add.
Status RunSparse(ControlChannel* control, Backend* backend, SparseMemory* memory,
                 const SparseGroup& group, const std::vector<SparseTensor>& tensors,
                 const SparseLayout& layout) {
  const int me = control->rank();
  void* gathered = nullptr;
  Status prepared = Guard("the sparse message buffer", [&] {
    return memory->MessageBuffer(layout.gathered_bytes(), &gathered);
  });
  if (prepared.ok()) prepared = backend->Prepare(layout.gathered_bytes());
  char* base = static_cast<char*>(gathered);
  if (prepared.ok()) {
    std::vector<DeviceCopy> pack;
    for (int t = 0; t < layout.tensors; ++t) {
      const SparseTensor& s = tensors[static_cast<size_t>(t)];
      pack.push_back({s.indices, base + layout.IndexOffset(me, t), s.pairs * layout.index_size});
      pack.push_back(
          {s.values, base + layout.ValueOffset(me, t), s.pairs * s.row * layout.value_size});
    }
    prepared = memory->CopyBytes(pack);
  }
  BRAID_RETURN_IF_ERROR(AgreeOnStatus(control, prepared));
  const BufferView all = Bytes(memory, base, layout.gathered_bytes());
  const BufferView mine = all.Slice(layout.message_offset[me], layout.message_bytes[me]);
  BRAID_RETURN_IF_ERROR(backend->Allgatherv(mine, all, layout.message_bytes));
  const double factor = group.op == ReduceOp::kAverage ? 1.0 / control->size() : 1.0;
  for (int t = 0; t < layout.tensors; ++t) {
    const SparseTensor& s = tensors[static_cast<size_t>(t)];
    BRAID_RETURN_IF_ERROR(memory->Zero(s.dense, DenseBytes(group, s)));
    for (int r = 0; r < layout.ranks; ++r) {
      BRAID_RETURN_IF_ERROR(memory->ScatterAdd(
          s.dense, s.length, s.row, group.value_dtype, base + layout.IndexOffset(r, t),
          group.index_dtype, base + layout.ValueOffset(r, t), layout.Pairs(r, t), factor));
    }
  }
  return memory->Finish();
}

}  // namespace

Status SparseAllreduce(ControlChannel* control, Backend* backend, SparseMemory* memory,
                       const Status& local, const SparseGroup& group,
                       const std::vector<SparseTensor>& tensors, SparseOutcome* outcome) {
  std::vector<int64_t> pairs;
  BRAID_RETURN_IF_ERROR(AgreeOnPairs(control, memory, local, group, tensors, &pairs));
  std::vector<int64_t> rows;
  int64_t dense_bytes = 0;
  for (const SparseTensor& t : tensors) {
    rows.push_back(t.row);
    dense_bytes += DenseBytes(group, t);
  }
  const SparseLayout layout =
      PlanSparseLayout(control->size(), rows, pairs, group.index_dtype, group.value_dtype);
  outcome->ran_dense =
      group.dense_fallback && control->size() > 1 && layout.gathered_bytes() > 2 * dense_bytes;
  if (!outcome->ran_dense) {
    outcome->gathered_bytes = layout.gathered_bytes();
    return RunSparse(control, backend, memory, group, tensors, layout);
  }
  static std::atomic<bool> logged{false};
  if (control->rank() == 0 && !logged.exchange(true)) {
    BRAID_LOG(Warning) << tensors[0].what << ": the ranks' pairs (" << layout.gathered_bytes()
                       << " bytes) outweigh a dense allreduce of " << dense_bytes
                       << " bytes, so it runs as one (dense_fallback; the same sums). Logged "
                          "once; later sparse allreduces switch the same way without a word.";
  }
  return RunDense(control, backend, memory, group, tensors);
}

Status SparseAllgather(ControlChannel* control, Backend* backend, SparseMemory* memory,
                       const Status& local, const SparseGroup& group, const SparseTensor& tensor,
                       SparseGathered* out) {
  BRAID_RETURN_IF_ERROR(AgreeOnPairs(control, memory, local, group, {tensor}, &out->pairs));
  out->total_pairs = 0;
  for (int64_t p : out->pairs) out->total_pairs += p;
  const int64_t index_size = Size(group.index_dtype);
  out->values_offset = PadTo8(out->total_pairs * index_size);
  const int64_t bytes =
      out->values_offset + out->total_pairs * tensor.row * Size(group.value_dtype);
  Status prepared =
      Guard("the sparse allgather output", [&] { return memory->Allocate(bytes, &out->memory); });
  if (prepared.ok()) prepared = backend->Prepare(bytes);
  BRAID_RETURN_IF_ERROR(AgreeOnStatus(control, prepared));
  char* base = static_cast<char*>(out->memory.get());
  BufferView indices = Bytes(memory, const_cast<void*>(tensor.indices), tensor.pairs);
  indices.dtype = group.index_dtype;
  BufferView all_indices = Bytes(memory, base, out->total_pairs);
  all_indices.dtype = group.index_dtype;
  BRAID_RETURN_IF_ERROR(backend->Allgatherv(indices, all_indices, out->pairs));
  std::vector<int64_t> value_counts;
  for (int64_t p : out->pairs) value_counts.push_back(p * tensor.row);
  BufferView values = Bytes(memory, const_cast<void*>(tensor.values), tensor.pairs * tensor.row);
  values.dtype = group.value_dtype;
  BufferView all_values = Bytes(memory, base + out->values_offset, out->total_pairs * tensor.row);
  all_values.dtype = group.value_dtype;
  BRAID_RETURN_IF_ERROR(backend->Allgatherv(values, all_values, value_counts));
  return memory->Finish();
}

}  // namespace braid
