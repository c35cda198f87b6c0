// The controller: the control plane. Each round it agrees with every other rank on
// which names are ready and in which order, so every rank executes the same
// responses in the same sequence.
//
// A round is one bitwise-AND allreduce of a bit vector: cached names ready here set
// their slot bit; flags (someone has uncached names, someone wants to shut down,
// someone still waits) and stale-slot bits travel inverted, so the AND yields their
// OR. When a rank has uncached names the round continues through rank 0: ready
// lists are gathered, rank 0 answers with the ordered responses (or errors naming a
// disagreement), and the answers are broadcast and cached.
//
// Join: a rank that has submitted a join sets its bit in a per-rank section (also
// inverted, so every rank learns the same set of joined ranks each round). While
// any rank is joined, names go through rank 0, whose table counts joined ranks
// as present; the joined ranks stand in for what they did not submit. When every
// rank has joined, each rank appends the same join response (root: the rank that
// joined last) and the join state starts over.
//
// Threading: coordinator thread only.
#pragma once

#include <map>
#include <memory>
#include <vector>

#include "collectives/control_channel.h"
#include "core/config.h"
#include "core/message_table.h"
#include "core/request.h"
#include "core/response_cache.h"
#include "core/stall_inspector.h"

namespace braid {

struct RoundResult {
  std::vector<Response> responses;  // to execute, in order
  bool shutdown = false;            // some rank asked to stop
  bool anyone_waiting = false;      // some rank still has names pending
  bool waiting_here = false;        // this rank still has names pending
  bool negotiated = false;          // the round went through rank 0
  // This rank had joined during the round: it takes part, with an empty
  // contribution, in the responses it did not submit.
  bool joined_here = false;
};

class Controller {
 public:
  Controller(ControlChannel* channel, const Config& config);

  // Runs one round with this rank's newly submitted requests.
  Status RunRound(const std::vector<RequestMeta>& fresh, bool want_shutdown, RoundResult* result);

  const ResponseCache& cache() const { return cache_; }

 private:
  // A request that hit the cache and waits for the other ranks' bits.
  struct CachedWait {
    RequestMeta meta;
    Clock::time_point since;
  };

  void Classify(const std::vector<RequestMeta>& fresh, Clock::time_point now);
  std::vector<uint64_t> PackBits(bool want_shutdown, Clock::time_point now);
  void ApplyInvalidations(const std::vector<uint32_t>& stale);
  void TakeCacheHits(const std::vector<uint64_t>& bits, RoundResult* result);
  std::vector<bool> JoinedRanks(const std::vector<uint64_t>& bits) const;
  void RouteCachedThroughRoot();
  void FinishJoin(const std::vector<bool>& joined_before, RoundResult* result);
  Status Negotiate(RoundResult* result);
  void DecideOnRoot(const std::vector<std::string>& lists, std::vector<Response>* out,
                    Status* status);
  void Remember(const std::vector<Response>& responses);

  ControlChannel* channel_;
  int rank_;
  int size_;
  size_t cache_words_;
  size_t join_words_;
  Clock::duration cache_patience_;
  ResponseCache cache_;
  std::map<uint32_t, CachedWait> cached_waiting_;
  std::vector<uint32_t> stale_slots_;      // slots this rank asks everyone to drop
  std::vector<RequestMeta> to_send_;       // uncached requests for rank 0
  bool join_pending_ = false;              // this rank has submitted a join
  std::vector<bool> joined_;               // the joined ranks as of the last round
  std::unique_ptr<MessageTable> table_;    // rank 0 only
  std::unique_ptr<StallInspector> stall_;  // rank 0 only
};

}  // namespace braid
