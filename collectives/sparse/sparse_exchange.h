// The sparse collectives, composed from a backend's allgatherv and allreduce and
// the control channel (docs/sparse.md).
//
// Sparse allreduce of a fused group of tensors, each given on every rank as
// (index, row) pairs into the first dimension of a dense tensor:
//   1. each rank checks its own indices, then the ranks agree on every rank's
//      pair counts (one gather and one broadcast on the control channel, which
//      also carries any rank's failure to every rank);
//   2. when the pairs of all ranks together outweigh a dense allreduce (more than
//      twice the dense bytes: a ring allreduce moves about 2 (N-1)/N of them per
//      rank, an allgather (N-1)/N of all messages) and dense_fallback is on, each
//      rank scatters its own pairs into the zeroed dense tensor and the ranks
//      allreduce it; otherwise
//   3. each rank packs its pairs into one message (sparse_layout.h), one
//      allgatherv gathers every rank's message, and every rank zeroes the dense
//      tensors and adds every rank's pairs into them, in rank order, duplicates
//      summed. An average scales each value by 1/N as it is added.
//
// Sparse allgather: the same counts round, then one allgatherv of the indices and
// one of the values into a new buffer: every rank's pairs, in rank order.
//
// Threading: the engine's coordinator, like every backend call.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "collectives/backend.h"
#include "collectives/control_channel.h"
#include "collectives/sparse/sparse_layout.h"
#include "collectives/sparse/sparse_memory.h"

namespace braid {

struct SparseTensor {
  std::string what;  // for messages: "sparse_allreduce of 'embedding.grad'"
  const void* indices = nullptr;
  const void* values = nullptr;
  int64_t pairs = 0;
  int64_t length = 0;     // the dense tensor's first dimension
  int64_t row = 1;        // value elements per pair
  void* dense = nullptr;  // sparse allreduce: the output, length * row values
};

struct SparseGroup {
  DataType value_dtype = DataType::kFloat32;
  DataType index_dtype = DataType::kInt32;
  ReduceOp op = ReduceOp::kSum;  // kSum or kAverage
  bool dense_fallback = true;
};

// What a sparse allreduce did, for the timeline and the counters.
struct SparseOutcome {
  bool ran_dense = false;
  int64_t gathered_bytes = 0;  // every rank's messages (0 when it ran dense)
};

Status SparseAllreduce(ControlChannel* control, Backend* backend, SparseMemory* memory,
                       const Status& local, const SparseGroup& group,
                       const std::vector<SparseTensor>& tensors, SparseOutcome* outcome);

// Every rank's pairs of one tensor, in rank order: `pairs[r]` pairs from rank r;
// the indices at the start of `memory`, the values at `values_offset` bytes.
struct SparseGathered {
  std::shared_ptr<void> memory;
  std::vector<int64_t> pairs;
  int64_t total_pairs = 0;
  int64_t values_offset = 0;
};

Status SparseAllgather(ControlChannel* control, Backend* backend, SparseMemory* memory,
                       const Status& local, const SparseGroup& group, const SparseTensor& tensor,
                       SparseGathered* out);

}  // namespace braid
