#include "collectives/peer_messages.h"

#include <algorithm>
#include <cstdint>

namespace braid {
namespace {

// A message's bytes in memory.
struct Extent {
  uintptr_t begin;
  uintptr_t end;
  bool recv;
  const PeerBuffer* message;
};

// Sorted by start, a range overlaps an earlier one exactly when it starts before
// that one's end.
Status CheckOverlaps(std::vector<Extent>* extents, const std::string& who) {
  std::sort(extents->begin(), extents->end(),
            [](const Extent& a, const Extent& b) { return a.begin < b.begin; });
  uintptr_t end = 0, recv_end = 0;
  for (const Extent& e : *extents) {
    if (e.begin < recv_end || (e.recv && e.begin < end)) {
      return InvalidArgument(who +
                             " neighbour exchange: " + DescribePeerMessage(*e.message, !e.recv) +
                             " overlaps another message's buffer, and a receive buffer must not");
    }
    end = std::max(end, e.end);
    if (e.recv) recv_end = std::max(recv_end, e.end);
  }
  return Status::OK();
}

}  // namespace

std::string DescribePeerMessage(const PeerBuffer& message, bool send) {
  return std::string(send ? "the message to rank " : "the message from rank ") +
         std::to_string(message.peer);
}

Status CheckPeerMessages(const std::vector<PeerBuffer>& sends, const std::vector<PeerBuffer>& recvs,
                         int size, const std::string& who) {
  std::vector<Extent> extents;
  for (bool send : {true, false}) {
    std::vector<char> seen(static_cast<size_t>(size), 0);
    for (const PeerBuffer& m : send ? sends : recvs) {
      if (m.peer < 0 || m.peer >= size) {
        return InvalidArgument(who + " neighbour exchange: " + DescribePeerMessage(m, send) +
                               ": no such rank (" + std::to_string(size) + " ranks)");
      }
      if (seen[m.peer]++) {
        return InvalidArgument(who + " neighbour exchange: " + DescribePeerMessage(m, send) +
                               " appears twice");
      }
      if (m.buf.count <= 0 || m.buf.data == nullptr) continue;
      const uintptr_t begin = reinterpret_cast<uintptr_t>(m.buf.data);
      extents.push_back(Extent{begin, begin + static_cast<uintptr_t>(m.buf.bytes()), !send, &m});
    }
  }
  return CheckOverlaps(&extents, who);
}

}  // namespace braid
