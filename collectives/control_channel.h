// The control plane's transport: the few primitives the controller uses to agree
// on what is ready. Messages are opaque byte strings (core/wire encodes them).
//
// Threading: driven by one thread at a time (the engine's coordinator).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace braid {

class ControlChannel {
 public:
  virtual ~ControlChannel() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;

  // Every rank contributes `mine`; on rank 0 `all` receives one string per rank
  // (rank order). `all` is left empty on the other ranks.
  virtual Status GatherToRoot(const std::string& mine, std::vector<std::string>* all) = 0;

  // Rank 0's `bytes` replace `bytes` on every other rank.
  virtual Status BroadcastFromRoot(std::string* bytes) = 0;

  // Element-wise bitwise AND of `words` across ranks, in place. Every rank passes
  // the same number of words. While others have not arrived, the caller spins for
  // up to `spin_us` (low latency when work is pending) before it sleeps between
  // checks (no CPU burnt by idle rounds).
  virtual Status AllreduceBitAnd(std::vector<uint64_t>* words, int spin_us = 50) = 0;
};

}  // namespace braid
