#include "core/request.h"

#include <climits>
#include <cmath>
#include <cstdint>
#include <sstream>

#include "common/text.h"

namespace braid {
namespace {

// The product of `shape`, or -1 when a dimension is negative or the product
// overflows. A zero dimension makes it 0 whatever the others are (an empty array
// of shape [2^40, 2^40, 0] is a valid one).
int64_t CheckedProduct(const std::vector<int64_t>& shape) {
  bool overflow = false, empty = false;
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return -1;
    empty = empty || d == 0;
    overflow = overflow || __builtin_mul_overflow(n, d, &n);
  }
  if (empty) return 0;
  return overflow ? -1 : n;
}

// The sparse collectives' own rules: float values, int32 or int64 indices that can
// address the dense tensor's first dimension, sum or average, no scale factors.
Status ValidateSparse(const RequestMeta& meta) {
  const std::string what =
      std::string(CollectiveName(meta.collective)) + " of '" + meta.name + "': ";
  if (!IsFloatingPoint(meta.dtype)) {
    return InvalidArgument(what + "values must be float16, bfloat16, float32 or float64, not " +
                           DataTypeName(meta.dtype));
  }
  if (meta.index_dtype != DataType::kInt32 && meta.index_dtype != DataType::kInt64) {
    return InvalidArgument(what + "indices must be int32 or int64, not " +
                           DataTypeName(meta.index_dtype));
  }
  if (meta.shape.empty()) {
    return InvalidArgument(what + "the dense tensor must have at least one dimension");
  }
  if (meta.index_dtype == DataType::kInt32 && meta.shape[0] - 1 > INT32_MAX) {
    return InvalidArgument(what + "int32 indices cannot address a first dimension of " +
                           std::to_string(meta.shape[0]) + ": use int64 indices");
  }
  const int64_t row = SparseRowElements(meta);
  int64_t values = 0;
  if (meta.pairs < 0 || __builtin_mul_overflow(meta.pairs, row, &values) ||
      __builtin_mul_overflow(values, static_cast<int64_t>(DataTypeSize(meta.dtype)), &values)) {
    return InvalidArgument(what + "bad number of pairs " + std::to_string(meta.pairs));
  }
  if (meta.collective == Collective::kSparseAllreduce && meta.op != ReduceOp::kSum &&
      meta.op != ReduceOp::kAverage) {
    return InvalidArgument(what + "the reduce operation must be sum or average, not " +
                           ReduceOpName(meta.op));
  }
  if (meta.prescale != 1.0 || meta.postscale != 1.0) {
    return InvalidArgument(what + "scale factors are not supported (prescale and postscale 1)");
  }
  return Status::OK();
}

// One list of a neighbour collective's graph: ranks in [0, world_size), not this
// one (a rank is not its own neighbour: its self weight covers that), ascending
// and distinct, so that every rank sees one order and one message per peer.
Status ValidatePeers(const std::string& what, const char* list, const std::vector<int32_t>& peers,
                     int world_size) {
  for (size_t k = 0; k < peers.size(); ++k) {
    if (peers[k] < 0 || peers[k] >= world_size) {
      return InvalidArgument(what + list + " names rank " + std::to_string(peers[k]) +
                             ", not in [0, " + std::to_string(world_size) + ")");
    }
    if (k > 0 && peers[k] <= peers[k - 1]) {
      return InvalidArgument(what + list + " must be ascending and without repeats, not " +
                             BracketList(std::vector<int64_t>(peers.begin(), peers.end())));
    }
  }
  return Status::OK();
}

// The neighbour collectives' own rules: the graph lists, and float tensors for the
// mixing form (its weights are real numbers).
Status ValidateNeighbor(const RequestMeta& meta, int world_size) {
  const std::string what =
      std::string(CollectiveName(meta.collective)) + " of '" + meta.name + "': ";
  BRAID_RETURN_IF_ERROR(ValidatePeers(what, "send_to", meta.send_to, world_size));
  BRAID_RETURN_IF_ERROR(ValidatePeers(what, "recv_from", meta.recv_from, world_size));
  if (meta.collective == Collective::kNeighborAllreduce && !IsFloatingPoint(meta.dtype)) {
    return InvalidArgument(what + "tensors must be float16, bfloat16, float32 or float64, not " +
                           DataTypeName(meta.dtype) + " (the mixing weights are real numbers)");
  }
  if (meta.prescale != 1.0 || meta.postscale != 1.0) {
    return InvalidArgument(what + "scale factors are not supported (prescale and postscale 1)");
  }
  // The CUDA mixing kernel takes its neighbours as one launch's parameters.
  constexpr size_t kMaxDeviceNeighbours = 64;
  if (meta.collective == Collective::kNeighborAllreduce && meta.device != kCpuDevice &&
      meta.recv_from.size() > kMaxDeviceNeighbours) {
    return InvalidArgument(what + "a GPU tensor mixes at most " +
                           std::to_string(kMaxDeviceNeighbours) + " neighbours, not " +
                           std::to_string(meta.recv_from.size()));
  }
  return Status::OK();
}

}  // namespace

Status ValidateNeighborWeights(const Request& r, int rank) {
  if (r.meta.collective != Collective::kNeighborAllreduce) return Status::OK();
  const std::string what = "neighbor_allreduce of '" + r.meta.name + "': ";
  if (r.recv_weights.size() != r.meta.recv_from.size()) {
    return InvalidArgument(what + std::to_string(r.recv_weights.size()) + " weights for " +
                           std::to_string(r.meta.recv_from.size()) +
                           " ranks in recv_from (one weight per rank received from)");
  }
  if (!std::isfinite(r.self_weight)) return InvalidArgument(what + "the self weight is not finite");
  for (size_t k = 0; k < r.recv_weights.size(); ++k) {
    if (!std::isfinite(r.recv_weights[k])) {
      return InvalidArgument(what + "the weight of rank " + std::to_string(r.meta.recv_from[k]) +
                             " is not finite");
    }
  }
  for (int32_t peer : r.meta.send_to) {
    if (peer == rank) return InvalidArgument(what + "send_to names this rank itself");
  }
  for (int32_t peer : r.meta.recv_from) {
    if (peer == rank) {
      return InvalidArgument(what +
                             "recv_from names this rank itself (its own term is the self weight)");
    }
  }
  return Status::OK();
}

int64_t RequestMeta::NumElements() const {
  return CheckedProduct(shape);
}

bool RequestMeta::operator==(const RequestMeta& o) const {
  return name == o.name && collective == o.collective && dtype == o.dtype && op == o.op &&
         root == o.root && device == o.device && prescale == o.prescale &&
         postscale == o.postscale && shape == o.shape && index_dtype == o.index_dtype &&
         pairs == o.pairs && dense_fallback == o.dense_fallback && send_to == o.send_to &&
         recv_from == o.recv_from;
}

bool GraphOf(const Response& response, int rank, std::vector<int32_t>* send_to,
             std::vector<int32_t>* recv_from) {
  const std::vector<int32_t>& g = response.graph;
  size_t pos = 0;
  // Reads one counted list at pos; false when the list runs past the end.
  auto read = [&](std::vector<int32_t>* out) {
    if (pos >= g.size() || g[pos] < 0 || g.size() - pos - 1 < static_cast<size_t>(g[pos]))
      return false;
    const size_t n = static_cast<size_t>(g[pos]);
    if (out != nullptr) out->assign(g.begin() + pos + 1, g.begin() + pos + 1 + n);
    pos += 1 + n;
    return true;
  };
  for (int r = 0; r < rank; ++r)
    if (!read(nullptr) || !read(nullptr)) return false;
  return read(send_to) && read(recv_from);
}

int64_t SparseRowElements(const RequestMeta& meta) {
  int64_t row = 1;
  for (size_t d = 1; d < meta.shape.size(); ++d) row *= meta.shape[d];
  return row;
}

int64_t Response::NumBytes() const {
  if (IsSparse(meta.collective)) {
    // The first submitter's pairs at negotiation: an estimate, used for fusion only.
    const int64_t row = SparseRowElements(meta);
    return meta.pairs * (static_cast<int64_t>(DataTypeSize(meta.index_dtype)) +
                         row * static_cast<int64_t>(DataTypeSize(meta.dtype)));
  }
  return meta.NumElements() * static_cast<int64_t>(DataTypeSize(meta.dtype));
}

Status DescribeSparse(const std::string& name, Collective collective, const SparseParts& parts,
                      RequestMeta* meta) {
  const std::string what = std::string(CollectiveName(collective)) + " of '" + name + "': ";
  if (parts.index_shape.size() != 1) {
    return InvalidArgument(what + "indices must have one dimension, not shape " +
                           BracketList(parts.index_shape));
  }
  if (parts.dense_shape.empty()) {
    return InvalidArgument(what + "the dense tensor must have at least one dimension");
  }
  std::vector<int64_t> rows(parts.dense_shape.begin() + 1, parts.dense_shape.end());
  rows.insert(rows.begin(), parts.index_shape[0]);
  if (parts.value_shape != rows) {
    return InvalidArgument(
        what + "values of shape " + BracketList(parts.value_shape) + " do not match " +
        std::to_string(parts.index_shape[0]) + " indices into a dense tensor of shape " +
        BracketList(parts.dense_shape) + " (expected " + BracketList(rows) + ")");
  }
  if (parts.index_device != parts.value_device) {
    return InvalidArgument(what + "indices are on " + DeviceName(parts.index_device) +
                           " but values on " + DeviceName(parts.value_device));
  }
  if (collective == Collective::kSparseAllreduce) {
    if (parts.dense_device != parts.value_device) {
      return InvalidArgument(what + "the dense output is on " + DeviceName(parts.dense_device) +
                             " but the values on " + DeviceName(parts.value_device));
    }
    if (parts.dense_dtype != parts.value_dtype) {
      return InvalidArgument(what + "the dense output is " + DataTypeName(parts.dense_dtype) +
                             " but the values are " + DataTypeName(parts.value_dtype));
    }
  }
  meta->name = name;
  meta->collective = collective;
  meta->dtype = parts.value_dtype;
  meta->index_dtype = parts.index_dtype;
  meta->pairs = parts.index_shape[0];
  meta->shape = parts.dense_shape;
  meta->device = parts.value_device;
  return Status::OK();
}

Status ValidateShape(const std::string& name, const std::vector<int64_t>& shape, DataType dtype) {
  auto refuse = [&](const std::string& why) {
    return InvalidArgument("tensor '" + name + "' of shape " + BracketList(shape) + ": " + why);
  };
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0) return refuse("dimension " + std::to_string(i) + " is negative");
  }
  const int64_t elements = CheckedProduct(shape);
  if (elements < 0) return refuse("the element count overflows int64");
  int64_t bytes = 0;
  if (__builtin_mul_overflow(elements, static_cast<int64_t>(DataTypeSize(dtype)), &bytes)) {
    return refuse(std::to_string(elements) + " " + DataTypeName(dtype) +
                  " elements overflow an int64 byte count");
  }
  return Status::OK();
}

Status ValidateRequest(const RequestMeta& meta, int world_size) {
  if (meta.name.empty()) return InvalidArgument("a tensor name must not be empty");
  if (!IsValidDataType(static_cast<int32_t>(meta.dtype))) {
    return InvalidArgument("tensor '" + meta.name + "' has unknown dtype " +
                           std::to_string(static_cast<int32_t>(meta.dtype)));
  }
  BRAID_RETURN_IF_ERROR(ValidateShape(meta.name, meta.shape, meta.dtype));
  if (meta.collective == Collective::kBroadcast && (meta.root < 0 || meta.root >= world_size)) {
    return InvalidArgument("broadcast of '" + meta.name + "': root rank " +
                           std::to_string(meta.root) + " is not in [0, " +
                           std::to_string(world_size) + ")");
  }
  if (meta.collective == Collective::kAllgather && meta.shape.empty()) {
    return InvalidArgument("allgather of '" + meta.name +
                           "': a scalar has no first dimension to gather along");
  }
  if (IsSparse(meta.collective)) return ValidateSparse(meta);
  if (IsNeighbor(meta.collective)) return ValidateNeighbor(meta, world_size);
  if (!meta.send_to.empty() || !meta.recv_from.empty()) {
    return InvalidArgument(std::string(CollectiveName(meta.collective)) + " of '" + meta.name +
                           "': only neighbour collectives take send_to / recv_from");
  }
  if (!std::isfinite(meta.prescale) || !std::isfinite(meta.postscale)) {
    return InvalidArgument("allreduce of '" + meta.name + "': scale factors must be finite");
  }
  if (meta.collective != Collective::kAllreduce) return Status::OK();
  // A bool is true or false: there is no bool between them to average or scale to.
  if (meta.dtype == DataType::kBool && meta.op == ReduceOp::kAverage) {
    return InvalidArgument("allreduce of '" + meta.name +
                           "': bool tensors cannot be averaged (sum and max are logical or, "
                           "product and min logical and)");
  }
  if (meta.dtype == DataType::kBool && (meta.prescale != 1.0 || meta.postscale != 1.0)) {
    return InvalidArgument("allreduce of '" + meta.name +
                           "': bool tensors cannot be scaled (prescale and postscale must be 1)");
  }
  return Status::OK();
}

}  // namespace braid
