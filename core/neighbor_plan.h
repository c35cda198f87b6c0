// How a group of neighbour collectives travels (docs/gossip.md): one message per
// peer and direction, holding, in group order, the tensors whose graph has that
// edge. Both ends derive the same layout from their own lists, because the ranks
// agreed on one graph per tensor (rank i sends t to j exactly when j receives t
// from i) and on the tensors' sizes.
//
// Sends: a single tensor goes straight from its input; when every tensor has the
// same send_to, the group is packed once and that one buffer serves every peer;
// otherwise each peer's message is packed on its own. Receives land in one area,
// message after message in peer order. Tensors start at 64-byte offsets within a
// message and messages at 256-byte offsets within an area (vector loads in the
// mixing pass).
//
// Pure computation: nothing here touches memory or communicates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace braid {

struct NeighborTensorShape {
  int64_t bytes = 0;
  const std::vector<int32_t>* send_to = nullptr;
  const std::vector<int32_t>* recv_from = nullptr;
};

struct NeighborMessage {
  int peer = 0;
  int64_t offset = 0;  // in the send or receive area
  int64_t bytes = 0;
  // The tensors it carries (indices into the group) and where each starts
  // within the message.
  std::vector<size_t> tensors;
  std::vector<int64_t> tensor_offsets;
};

struct NeighborPlan {
  std::vector<NeighborMessage> sends;  // ascending peers
  std::vector<NeighborMessage> recvs;  // ascending peers
  // How sends are laid out: kDirect (one tensor: its input is the message),
  // kShared (one packed buffer of every tensor: every message is all of it, at
  // offset 0), kPerPeer (each message packed at its offset in the send area).
  enum class SendLayout { kDirect, kShared, kPerPeer };
  SendLayout send_layout = SendLayout::kDirect;
  int64_t send_area_bytes = 0;  // 0 for kDirect
  int64_t recv_area_bytes = 0;
  // What the data plane may have to stage: the receive area and each distinct
  // send buffer once (for kDirect, the tensor itself).
  int64_t staged_bytes = 0;

  // Where tensor `t`'s copy from peer `peer` lies in the receive area; -1 when
  // that peer does not send it.
  int64_t RecvOffset(size_t t, int peer) const;
};

// `packed_recvs`: receive messages back to back, without alignment (a neighbour
// exchange of one tensor, whose receive area is its output, one block per peer).
NeighborPlan PlanNeighbors(const std::vector<NeighborTensorShape>& tensors,
                           bool packed_recvs = false);

}  // namespace braid
