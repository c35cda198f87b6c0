// What every backend checks of a neighbour exchange's message lists
// (Backend::NeighborExchange) besides the buffers themselves, whose rules (host
// or device memory) are each backend's own: every peer is a rank, there is at
// most one message per direction and peer, and no receive buffer overlaps another
// message's buffer (sends may share one: a gossip step sends one tensor to all).
//
// Threading: plain functions; safe from any thread.
#pragma once

#include <string>
#include <vector>

#include "collectives/backend.h"
#include "common/status.h"

namespace braid {

// "the message to rank 3" / "the message from rank 3".
std::string DescribePeerMessage(const PeerBuffer& message, bool send);

// kInvalidArgument naming `who` (the backend) and the message, or OK. `size`:
// the number of ranks. Messages with a negative count are the buffer check's to
// refuse; here they are skipped.
Status CheckPeerMessages(const std::vector<PeerBuffer>& sends, const std::vector<PeerBuffer>& recvs,
                         int size, const std::string& who);

}  // namespace braid
