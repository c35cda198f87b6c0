#include "core/message_table.h"

#include <algorithm>
#include <sstream>

#include "common/text.h"

namespace braid {
namespace {

// The submissions being compared: metas[i] came from rank ranks[i].
struct Submissions {
  std::vector<int> ranks;
  std::vector<RequestMeta> metas;
};

template <typename T>
std::string Describe(const Submissions& sub, const char* what, T (*field)(const RequestMeta&)) {
  std::ostringstream s;
  s << "Mismatched " << what << " for '" << sub.metas[0].name << "' across ranks:";
  for (size_t i = 0; i < sub.metas.size(); ++i)
    s << (i ? "," : "") << " rank " << sub.ranks[i] << " has " << field(sub.metas[i]);
  return s.str();
}

std::string CollectiveOf(const RequestMeta& m) {
  return CollectiveName(m.collective);
}
std::string DtypeOf(const RequestMeta& m) {
  return DataTypeName(m.dtype);
}
std::string OpOf(const RequestMeta& m) {
  return ReduceOpName(m.op);
}
std::string DeviceOf(const RequestMeta& m) {
  return DeviceName(m.device);
}
// Ranks may use different GPUs (one each); what must agree is host or GPU memory.
bool OnGpu(const RequestMeta& m) {
  return m.device != kCpuDevice;
}
int RootOf(const RequestMeta& m) {
  return m.root;
}
std::string ShapeOf(const RequestMeta& m) {
  return BracketList(m.shape);
}
std::string TrailingShapeOf(const RequestMeta& m) {
  if (m.shape.empty()) return "[]";
  return "[*" + BracketList(m.shape).substr(1 + std::to_string(m.shape[0]).size());
}
std::string IndexTypeOf(const RequestMeta& m) {
  return DataTypeName(m.index_dtype);
}
std::string FallbackOf(const RequestMeta& m) {
  return m.dense_fallback ? "dense_fallback on" : "dense_fallback off";
}
std::string ScalesOf(const RequestMeta& m) {
  std::ostringstream s;
  s << "prescale " << m.prescale << " postscale " << m.postscale;
  return s.str();
}

template <typename T>
bool AllEqual(const Submissions& sub, T (*field)(const RequestMeta&)) {
  for (const auto& m : sub.metas)
    if (!(field(m) == field(sub.metas[0]))) return false;
  return true;
}

std::string FindMismatchIn(const Submissions& sub) {
  if (sub.metas.empty()) return "";
  if (!AllEqual(sub, CollectiveOf)) return Describe(sub, "operations", CollectiveOf);
  if (!AllEqual(sub, DtypeOf)) return Describe(sub, "data types", DtypeOf);
  if (!AllEqual(sub, OnGpu)) return Describe(sub, "devices (host or GPU memory)", DeviceOf);
  Collective c = sub.metas[0].collective;
  // Sparse: the number of pairs may differ; the dense tensor may not.
  if (IsSparse(c)) {
    if (!AllEqual(sub, ShapeOf)) return Describe(sub, "dense shapes", ShapeOf);
    if (!AllEqual(sub, IndexTypeOf)) return Describe(sub, "index types", IndexTypeOf);
    if (c == Collective::kSparseAllreduce && !AllEqual(sub, OpOf))
      return Describe(sub, "reduce operations", OpOf);
    if (!AllEqual(sub, FallbackOf)) return Describe(sub, "dense_fallback settings", FallbackOf);
    return "";
  }
  if (c == Collective::kAllgather) {
    if (!AllEqual(sub, TrailingShapeOf))
      return Describe(sub, "allgather shapes (all but the first dimension must agree)", ShapeOf);
    return "";
  }
  if (!AllEqual(sub, ShapeOf)) return Describe(sub, "shapes", ShapeOf);
  if (c == Collective::kAllreduce) {
    if (!AllEqual(sub, OpOf)) return Describe(sub, "reduce operations", OpOf);
    if (!AllEqual(sub, ScalesOf)) return Describe(sub, "scale factors", ScalesOf);
  }
  if (c == Collective::kBroadcast && !AllEqual(sub, RootOf))
    return Describe(sub, "root ranks", RootOf);
  return "";
}

// "broadcast of 'w': rank(s) 1, 3 have called join; ..." for the joined ranks
// that did not submit a collective a joined rank cannot stand in for (broadcast:
// it has no buffer to receive; a neighbour collective: it has no place in the
// graph). "" when there are none or the collective is not one of those.
std::string UnsupportedWhileJoined(const RequestMeta& meta, const std::vector<bool>& submitted,
                                   const std::vector<bool>& joined) {
  if (meta.collective != Collective::kBroadcast && !IsNeighbor(meta.collective)) return "";
  std::ostringstream ranks;
  bool any = false;
  for (size_t r = 0; r < submitted.size(); ++r) {
    if (submitted[r] || !joined[r]) continue;
    ranks << (any ? ", " : "") << r;
    any = true;
  }
  if (!any) return "";
  return std::string(CollectiveName(meta.collective)) + " of '" + meta.name + "': rank(s) " +
         ranks.str() + " have called join; " + CollectiveName(meta.collective) +
         " is not supported while ranks are joined";
}

bool Lists(const std::vector<int32_t>& peers, int rank) {
  return std::binary_search(peers.begin(), peers.end(), rank);
}

// A neighbour collective's graph: rank i sends to j exactly when j receives from
// i. Names the first edges that do not match ("" when they all do). Every rank
// submitted (joined ranks are refused first).
std::string InconsistentGraph(const std::vector<RequestMeta>& by_rank) {
  constexpr int kMaxListed = 8;
  std::ostringstream s;
  int listed = 0, found = 0;
  auto note = [&](int a, const char* verb, int b, const char* missing) {
    if (listed++ < kMaxListed) {
      s << (listed > 1 ? "; " : "") << "rank " << a << verb << b << " but rank " << b << missing
        << a;
    }
    ++found;
  };
  const int n = static_cast<int>(by_rank.size());
  for (int i = 0; i < n; ++i) {
    for (int32_t j : by_rank[i].send_to)
      if (!Lists(by_rank[j].recv_from, i))
        note(i, " sends to rank ", j, " does not receive from rank ");
    for (int32_t j : by_rank[i].recv_from)
      if (!Lists(by_rank[j].send_to, i))
        note(i, " receives from rank ", j, " does not send to rank ");
  }
  if (found == 0) return "";
  if (found > kMaxListed) s << "; and " << (found - kMaxListed) << " more";
  return "Inconsistent neighbour graph for '" + by_rank[0].name + "' across ranks: " + s.str() +
         " (rank i must list j in send_to exactly when rank j lists i in recv_from)";
}

}  // namespace

std::string FindMismatch(const std::vector<RequestMeta>& by_rank,
                         const std::vector<bool>& present) {
  Submissions sub;
  for (size_t r = 0; r < by_rank.size(); ++r) {
    if (!present.empty() && !present[r]) continue;
    sub.ranks.push_back(static_cast<int>(r));
    sub.metas.push_back(by_rank[r]);
  }
  return FindMismatchIn(sub);
}

bool MessageTable::Missing(const Entry& entry, int rank) const {
  return !entry.submitted[rank] && !joined_[rank];
}

bool MessageTable::Complete(const Entry& entry) const {
  for (int r = 0; r < world_size_; ++r)
    if (Missing(entry, r)) return false;
  return true;
}

std::vector<std::string> MessageTable::SetJoined(const std::vector<bool>& joined) {
  joined_ = joined;
  std::vector<std::string> complete;
  for (const auto& kv : entries_)
    if (Complete(kv.second)) complete.push_back(kv.first);
  return complete;
}

bool MessageTable::Add(int rank, const RequestMeta& meta, Clock::time_point now) {
  auto it = entries_.find(meta.name);
  if (it == entries_.end()) {
    Entry entry;
    entry.by_rank.resize(world_size_);
    entry.submitted.assign(world_size_, false);
    entry.first_seen = entry.last_warned = now;
    it = entries_.emplace(meta.name, std::move(entry)).first;
  }
  Entry& entry = it->second;
  if (!entry.submitted[rank]) {
    entry.submitted[rank] = true;
    entry.by_rank[rank] = meta;
    ++entry.count;
  }
  return Complete(entry);
}

Response MessageTable::TakeResponse(const std::string& name) {
  auto it = entries_.find(name);
  const Entry& entry = it->second;
  Response response;
  for (int r = 0; r < world_size_; ++r) {
    if (!entry.submitted[r]) continue;
    response.meta = entry.by_rank[r];  // the lowest submitting rank's
    break;
  }
  std::string mismatch = FindMismatch(entry.by_rank, entry.submitted);
  std::string joined_error = UnsupportedWhileJoined(response.meta, entry.submitted, joined_);
  if (mismatch.empty() && joined_error.empty() && IsNeighbor(response.meta.collective))
    mismatch = InconsistentGraph(entry.by_rank);
  std::string device_error;
  if (mismatch.empty() && joined_error.empty() && OnGpu(response.meta))
    device_error = AssignDevices(entry, &response);
  if (!mismatch.empty()) {
    response.error_code = StatusCode::kMismatch;
    response.error = mismatch;
  } else if (!joined_error.empty()) {
    response.error_code = StatusCode::kInvalidArgument;
    response.error = joined_error;
  } else if (!device_error.empty()) {
    response.devices.clear();
    response.error_code = StatusCode::kInvalidArgument;
    response.error = device_error;
  } else if (response.meta.collective == Collective::kAllgather) {
    for (int r = 0; r < world_size_; ++r)
      response.first_dims.push_back(entry.submitted[r] ? entry.by_rank[r].shape[0] : 0);
  } else if (IsNeighbor(response.meta.collective)) {
    for (const RequestMeta& m : entry.by_rank) {
      response.graph.push_back(static_cast<int32_t>(m.send_to.size()));
      response.graph.insert(response.graph.end(), m.send_to.begin(), m.send_to.end());
      response.graph.push_back(static_cast<int32_t>(m.recv_from.size()));
      response.graph.insert(response.graph.end(), m.recv_from.begin(), m.recv_from.end());
    }
  }
  entries_.erase(it);
  return response;
}

// Each rank's GPU for a GPU response: the one it submitted on, or (a joined rank)
// the one its data plane is on, else the lowest submitting rank's. The first GPU
// response fixes every rank's data plane; afterwards a rank's tensor must be on
// that GPU. Returns the error message when it is not ("" when all is well).
std::string MessageTable::AssignDevices(const Entry& entry, Response* response) {
  const bool first = plane_device_.empty();
  response->devices.assign(static_cast<size_t>(world_size_), response->meta.device);
  std::ostringstream error;
  for (int r = 0; r < world_size_; ++r) {
    if (!entry.submitted[r]) {
      if (!first) response->devices[r] = plane_device_[r];
      continue;
    }
    const int device = entry.by_rank[r].device;
    response->devices[r] = device;
    if (first || plane_device_[r] == device) continue;
    if (error.tellp() > 0) error << "; ";
    error << "rank " << r << " has it on " << DeviceName(device) << " but its GPU data plane is on "
          << DeviceName(static_cast<int>(plane_device_[r]));
  }
  if (error.tellp() > 0) {
    return "'" + response->meta.name + "': " + error.str() +
           " (braid runs each rank on one GPU, the one its first GPU collective used)";
  }
  if (first) plane_device_ = response->devices;
  return "";
}

Response MessageTable::TakeError(const std::string& name, StatusCode code,
                                 const std::string& message) {
  auto it = entries_.find(name);
  Response response;
  for (size_t r = 0; r < it->second.by_rank.size(); ++r) {
    if (it->second.submitted[r]) {
      response.meta = it->second.by_rank[r];
      break;
    }
  }
  response.error_code = code;
  response.error = message;
  entries_.erase(it);
  return response;
}

}  // namespace braid
