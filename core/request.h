// What a framework thread hands the engine (Request) and what the ranks agree on
// (Response). RequestMeta and Response cross the wire (core/wire.h); the pointers
// in Request stay on this rank.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/types.h"
#include "core/handle.h"

namespace braid {

using Clock = std::chrono::steady_clock;

// The name every join request carries (Engine::Enqueue sets it): one join per rank
// is in flight at a time, and the ranks' join responses match it.
inline constexpr char kJoinName[] = "braid.join";

// The description of a request that every rank must agree on.
struct RequestMeta {
  std::string name;
  Collective collective = Collective::kAllreduce;
  DataType dtype = DataType::kFloat32;
  ReduceOp op = ReduceOp::kSum;
  int32_t root = 0;
  int32_t device = kCpuDevice;
  double prescale = 1.0;
  double postscale = 1.0;
  std::vector<int64_t> shape;
  // Sparse collectives: `shape` is the dense tensor's; the pairs are `pairs`
  // indices (of `index_dtype`, int32 or int64) into its first dimension, and as
  // many values, each a row of the dense tensor (its shape without the first
  // dimension). `pairs` may differ between ranks. `dense_fallback`: a sparse
  // allreduce may run as a dense allreduce when that moves fewer bytes.
  DataType index_dtype = DataType::kInt32;
  int64_t pairs = 0;
  bool dense_fallback = true;
  // Neighbour collectives: the ranks this rank sends its tensor to and the ranks
  // it receives tensors from, ascending, distinct, never itself. They differ
  // between ranks; negotiation checks that they form one graph (i sends to j
  // exactly when j receives from i). Other collectives leave them empty.
  std::vector<int32_t> send_to;
  std::vector<int32_t> recv_from;

  // The product of the dimensions; -1 when a dimension is negative or the product
  // does not fit int64 (ValidateRequest refuses such shapes before they are queued).
  int64_t NumElements() const;
  bool operator==(const RequestMeta& other) const;
};

struct Request {
  RequestMeta meta;
  const void* input = nullptr;    // sparse: the values
  void* output = nullptr;         // equal to input for in-place operations; sparse allreduce: dense
  const void* indices = nullptr;  // sparse collectives only
  // neighbor_allreduce: output = self_weight * input + sum over k of
  // recv_weights[k] * (the tensor from meta.recv_from[k]). This rank's own
  // weights: they are not negotiated and may change every call.
  double self_weight = 1.0;
  std::vector<double> recv_weights;
  void* stream = nullptr;
  // GPU tensors: the event recorded on `stream` when the request was enqueued
  // (core/ready_event.h), and its place in the order of recording; null when none
  // could be recorded (the executor then waits for `stream` as it is when it runs).
  std::shared_ptr<void> ready;
  uint64_t ready_order = 0;
  std::shared_ptr<Handle> handle;
  Clock::time_point enqueued_at;
  Clock::time_point taken_at;  // when the coordinator took it into negotiation
};

// The ranks' decision about one tensor name: execute it (with the agreed
// parameters) or fail it everywhere with `error`.
struct Response {
  RequestMeta meta;  // as submitted by rank 0 (shape: rank 0's)
  // allgather: the first dimension on every rank, in rank order.
  std::vector<int64_t> first_dims;
  // GPU tensors: the GPU each rank runs this on, in rank order (ranks may use
  // different GPUs, one each; a joined rank's is the GPU its data plane is on).
  // Empty for host tensors.
  std::vector<int64_t> devices;
  // Neighbour collectives: every rank's graph lists, in rank order, each rank's as
  // its send_to count, send_to, its recv_from count, recv_from (GraphOf reads
  // one). Kept so that a cached response matches a rank's request only with the
  // lists the ranks agreed on.
  std::vector<int32_t> graph;
  StatusCode error_code = StatusCode::kOk;
  std::string error;

  bool is_error() const { return error_code != StatusCode::kOk; }
  int64_t NumBytes() const;
};

// Rank `rank`'s lists in `response.graph`; false when it holds none for it.
bool GraphOf(const Response& response, int rank, std::vector<int32_t>* send_to,
             std::vector<int32_t>* recv_from);

// A sparse request's elements per row (the dense shape without its first
// dimension) and its value count (pairs times that).
int64_t SparseRowElements(const RequestMeta& meta);

// What a caller gives for a sparse collective: the indices (one dimension, k),
// the values (k rows: [k] followed by the dense shape without its first
// dimension), and the dense tensor (sparse allreduce: the output; sparse
// allgather: its shape alone, which the indices address).
struct SparseParts {
  DataType index_dtype = DataType::kInt32;
  std::vector<int64_t> index_shape;
  int index_device = kCpuDevice;
  DataType value_dtype = DataType::kFloat32;
  std::vector<int64_t> value_shape;
  int value_device = kCpuDevice;
  std::vector<int64_t> dense_shape;
  DataType dense_dtype = DataType::kFloat32;  // sparse allreduce only
  int dense_device = kCpuDevice;              // sparse allreduce only
};

// Fills the sparse fields of *meta (collective, dtype, index type, pairs, shape,
// device) from `parts`, or says what does not fit together; messages name the
// tensor. The rest (ValidateRequest) is checked when it is enqueued.
Status DescribeSparse(const std::string& name, Collective collective, const SparseParts& parts,
                      RequestMeta* meta);

// Checks a request for things that are wrong on this rank alone: the name, the
// dtype, the shape (no negative dimension, an element and byte count that fit
// int64), the root, the scale factors, and what bool tensors cannot do (average,
// scaling). Every message names the tensor.
Status ValidateRequest(const RequestMeta& meta, int world_size);

// A neighbour allreduce's weights (one per rank in recv_from, finite) and that
// neither list names `rank`, this rank; other requests pass. The rest of the graph
// is checked by ValidateRequest, and across ranks by negotiation.
Status ValidateNeighborWeights(const Request& request, int rank);

// The shape part of ValidateRequest, for callers that check a tensor before they
// build a request (the Python binding, before it trusts an exporter's shape).
Status ValidateShape(const std::string& name, const std::vector<int64_t>& shape, DataType dtype);

}  // namespace braid
