#include "core/message_table.h"

#include <sstream>

namespace braid {
namespace {

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << "]";
  return s.str();
}

template <typename T>
std::string Describe(const std::vector<RequestMeta>& by_rank, const char* what,
                     T (*field)(const RequestMeta&)) {
  std::ostringstream s;
  s << "Mismatched " << what << " for '" << by_rank[0].name << "' across ranks:";
  for (size_t r = 0; r < by_rank.size(); ++r)
    s << (r ? "," : "") << " rank " << r << " has " << field(by_rank[r]);
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
int RootOf(const RequestMeta& m) {
  return m.root;
}
std::string ShapeOf(const RequestMeta& m) {
  return ShapeText(m.shape);
}
std::string TrailingShapeOf(const RequestMeta& m) {
  if (m.shape.empty()) return "[]";
  return "[*" + ShapeText(m.shape).substr(1 + std::to_string(m.shape[0]).size());
}
std::string ScalesOf(const RequestMeta& m) {
  std::ostringstream s;
  s << "prescale " << m.prescale << " postscale " << m.postscale;
  return s.str();
}

template <typename T>
bool AllEqual(const std::vector<RequestMeta>& by_rank, T (*field)(const RequestMeta&)) {
  for (const auto& m : by_rank)
    if (!(field(m) == field(by_rank[0]))) return false;
  return true;
}

}  // namespace

std::string FindMismatch(const std::vector<RequestMeta>& by_rank) {
  if (!AllEqual(by_rank, CollectiveOf)) return Describe(by_rank, "operations", CollectiveOf);
  if (!AllEqual(by_rank, DtypeOf)) return Describe(by_rank, "data types", DtypeOf);
  if (!AllEqual(by_rank, DeviceOf)) return Describe(by_rank, "devices", DeviceOf);
  Collective c = by_rank[0].collective;
  if (c == Collective::kAllgather) {
    if (!AllEqual(by_rank, TrailingShapeOf))
      return Describe(by_rank, "allgather shapes (all but the first dimension must agree)",
                      ShapeOf);
    return "";
  }
  if (!AllEqual(by_rank, ShapeOf)) return Describe(by_rank, "shapes", ShapeOf);
  if (c == Collective::kAllreduce) {
    if (!AllEqual(by_rank, OpOf)) return Describe(by_rank, "reduce operations", OpOf);
    if (!AllEqual(by_rank, ScalesOf)) return Describe(by_rank, "scale factors", ScalesOf);
  }
  if (c == Collective::kBroadcast && !AllEqual(by_rank, RootOf))
    return Describe(by_rank, "root ranks", RootOf);
  return "";
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
  return entry.count == world_size_;
}

Response MessageTable::TakeResponse(const std::string& name) {
  auto it = entries_.find(name);
  Response response;
  response.meta = it->second.by_rank[0];
  std::string mismatch = FindMismatch(it->second.by_rank);
  if (!mismatch.empty()) {
    response.error_code = StatusCode::kMismatch;
    response.error = mismatch;
  } else if (response.meta.collective == Collective::kAllgather) {
    for (const auto& m : it->second.by_rank) response.first_dims.push_back(m.shape[0]);
  }
  entries_.erase(it);
  return response;
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
