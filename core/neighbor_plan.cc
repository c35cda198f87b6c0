#include "core/neighbor_plan.h"

#include <algorithm>
#include <map>

namespace braid {
namespace {

// Where tensors start within a message (both ends lay it out alike, so the
// padding travels but costs at most 63 bytes per tensor) and where messages start
// in an area: aligned, so that the mixing pass reads whole vectors.
constexpr int64_t kTensorAlignment = 64;
constexpr int64_t kMessageAlignment = 256;

int64_t AlignUp(int64_t bytes, int64_t alignment) {
  return (bytes + alignment - 1) / alignment * alignment;
}

// The messages of one direction: for each peer named in any tensor's list
// (`list(t)`), the tensors that name it, laid out one after another.
template <typename ListOf>
std::vector<NeighborMessage> Messages(const std::vector<NeighborTensorShape>& tensors, ListOf list,
                                      int64_t message_alignment) {
  std::map<int, NeighborMessage> by_peer;
  for (size_t t = 0; t < tensors.size(); ++t) {
    for (int32_t peer : *list(tensors[t])) {
      NeighborMessage& m = by_peer[peer];
      m.peer = peer;
      m.tensors.push_back(t);
      m.bytes = AlignUp(m.bytes, kTensorAlignment);
      m.tensor_offsets.push_back(m.bytes);
      m.bytes += tensors[t].bytes;
    }
  }
  std::vector<NeighborMessage> out;
  int64_t offset = 0;
  for (auto& [peer, m] : by_peer) {
    m.offset = offset;
    offset = AlignUp(offset + m.bytes, message_alignment);
    out.push_back(std::move(m));
  }
  return out;
}

int64_t AreaBytes(const std::vector<NeighborMessage>& messages) {
  return messages.empty() ? 0 : messages.back().offset + messages.back().bytes;
}

}  // namespace

int64_t NeighborPlan::RecvOffset(size_t t, int peer) const {
  auto it = std::lower_bound(recvs.begin(), recvs.end(), peer,
                             [](const NeighborMessage& m, int p) { return m.peer < p; });
  if (it == recvs.end() || it->peer != peer) return -1;
  for (size_t k = 0; k < it->tensors.size(); ++k)
    if (it->tensors[k] == t) return it->offset + it->tensor_offsets[k];
  return -1;
}

NeighborPlan PlanNeighbors(const std::vector<NeighborTensorShape>& tensors, bool packed_recvs) {
  NeighborPlan plan;
  plan.sends = Messages(
      tensors, [](const NeighborTensorShape& s) { return s.send_to; }, kMessageAlignment);
  plan.recvs = Messages(
      tensors, [](const NeighborTensorShape& s) { return s.recv_from; },
      packed_recvs ? 1 : kMessageAlignment);
  plan.recv_area_bytes = AreaBytes(plan.recvs);
  bool same_sends = true;
  for (const NeighborTensorShape& s : tensors)
    same_sends = same_sends && *s.send_to == *tensors[0].send_to;
  if (tensors.size() <= 1) {
    plan.send_layout = NeighborPlan::SendLayout::kDirect;
  } else if (same_sends) {
    plan.send_layout = NeighborPlan::SendLayout::kShared;
    // Every message carries every tensor: the first one's layout is the buffer's.
    plan.send_area_bytes = plan.sends.empty() ? 0 : plan.sends[0].bytes;
    for (NeighborMessage& m : plan.sends) m.offset = 0;
  } else {
    plan.send_layout = NeighborPlan::SendLayout::kPerPeer;
    plan.send_area_bytes = AreaBytes(plan.sends);
  }
  const int64_t direct = tensors.empty() || plan.sends.empty() ? 0 : tensors[0].bytes;
  plan.staged_bytes =
      plan.recv_area_bytes +
      (plan.send_layout == NeighborPlan::SendLayout::kDirect ? direct : plan.send_area_bytes);
  return plan;
}

}  // namespace braid
