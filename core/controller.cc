#include "core/controller.h"

#include <algorithm>

#include "common/logging.h"
#include "core/wire.h"

namespace braid {
namespace {

// Flag bits of word 0; they travel inverted so that the AND computes their OR.
constexpr uint64_t kFlagUncached = 1;    // some rank has names for rank 0
constexpr uint64_t kFlagShutdown = 2;    // some rank asked to stop
constexpr uint64_t kFlagWaiting = 4;     // some rank still has names pending
constexpr uint64_t kFlagCachedWait = 8;  // some rank waits on cache hits

// How long a round spins for the other ranks before sleeping between checks.
constexpr int kBusySpinUs = 1000;
constexpr int kIdleSpinUs = 50;

bool TestBit(const std::vector<uint64_t>& words, size_t base, uint32_t bit) {
  return (words[base + bit / 64] >> (bit % 64)) & 1u;
}
// Calls fn(slot) for every slot below `limit` whose bit is set in the section that
// starts at word `base` (`flip`: whose bit is clear, for the inverted sections), a
// word at a time: most words of a round are empty.
template <typename Fn>
void ForEachSlot(const std::vector<uint64_t>& words, size_t base, uint32_t limit, bool flip,
                 Fn fn) {
  const size_t count = (static_cast<size_t>(limit) + 63) / 64;
  for (size_t w = 0; w < count; ++w) {
    uint64_t word = flip ? ~words[base + w] : words[base + w];
    while (word != 0) {
      const uint32_t slot = static_cast<uint32_t>(w * 64) + __builtin_ctzll(word);
      word &= word - 1;
      if (slot < limit) fn(slot);
    }
  }
}

void SetBit(std::vector<uint64_t>* words, size_t base, uint32_t bit) {
  (*words)[base + bit / 64] |= uint64_t{1} << (bit % 64);
}

Clock::duration Seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

}  // namespace

Controller::Controller(ControlChannel* channel, const Config& config)
    : channel_(channel),
      rank_(channel->rank()),
      size_(channel->size()),
      cache_words_((static_cast<size_t>(config.cache_capacity) + 63) / 64),
      join_words_((static_cast<size_t>(size_) + 63) / 64),
      cache_(static_cast<uint32_t>(config.cache_capacity)),
      joined_(static_cast<size_t>(size_), false) {
  // A cached name that waits this long is sent through rank 0 instead, where the
  // stall inspector can see which ranks are missing.
  double patience = std::min(1.0, config.stall_warning_seconds / 2);
  if (config.stall_timeout_seconds > 0)
    patience = std::min(patience, config.stall_timeout_seconds / 2);
  cache_patience_ = Seconds(patience);
  if (rank_ == 0) {
    table_ = std::make_unique<MessageTable>(size_);
    stall_ = std::make_unique<StallInspector>(config.stall_warning_seconds,
                                              config.stall_timeout_seconds);
  }
}

void Controller::Classify(const std::vector<RequestMeta>& fresh, Clock::time_point now) {
  for (const RequestMeta& meta : fresh) {
    if (meta.collective == Collective::kJoin) {
      join_pending_ = true;  // travels as this rank's bit, never to rank 0
      continue;
    }
    uint32_t slot = 0;
    switch (cache_.capacity() ? cache_.Find(meta, rank_, &slot) : ResponseCache::Match::kMiss) {
      case ResponseCache::Match::kHit:
        cached_waiting_[slot] = CachedWait{meta, now};
        break;
      case ResponseCache::Match::kStale:
        stale_slots_.push_back(slot);
        to_send_.push_back(meta);
        break;
      case ResponseCache::Match::kMiss:
        to_send_.push_back(meta);
        break;
    }
  }
}

// Layout: [flags][cache ready bits][stale slot bits][joined rank bits]; the
// last two sections travel inverted, like the flags.
std::vector<uint64_t> Controller::PackBits(bool want_shutdown, Clock::time_point now) {
  std::vector<uint64_t> bits(1 + 2 * cache_words_ + join_words_, 0);
  uint64_t flags = 0;
  for (const auto& kv : cached_waiting_) {
    if (now - kv.second.since >= cache_patience_) {
      stale_slots_.push_back(kv.first);
    } else {
      SetBit(&bits, 1, kv.first);
    }
  }
  bool root_busy = table_ && !table_->empty();
  if (!to_send_.empty() || !stale_slots_.empty()) flags |= kFlagUncached;
  if (root_busy && stall_->Due(now)) flags |= kFlagUncached;
  if (want_shutdown) flags |= kFlagShutdown;
  if (!cached_waiting_.empty() || !to_send_.empty() || root_busy || join_pending_)
    flags |= kFlagWaiting;
  if (!cached_waiting_.empty()) flags |= kFlagCachedWait;
  for (uint32_t slot : stale_slots_) SetBit(&bits, 1 + cache_words_, slot);
  if (join_pending_) SetBit(&bits, 1 + 2 * cache_words_, static_cast<uint32_t>(rank_));
  bits[0] = ~flags;
  for (size_t i = 1 + cache_words_; i < bits.size(); ++i) bits[i] = ~bits[i];
  stale_slots_.clear();
  return bits;
}

void Controller::ApplyInvalidations(const std::vector<uint32_t>& stale) {
  for (uint32_t slot : stale) {
    auto it = cached_waiting_.find(slot);
    if (it != cached_waiting_.end()) {
      to_send_.push_back(it->second.meta);
      cached_waiting_.erase(it);
    }
    cache_.Erase(slot);
  }
}

void Controller::TakeCacheHits(const std::vector<uint64_t>& bits, RoundResult* result) {
  ForEachSlot(bits, 1, cache_.capacity(), /*flip=*/false, [&](uint32_t slot) {
    result->responses.push_back(cache_.Get(slot));
    cache_.Touch(slot);
    cached_waiting_.erase(slot);
  });
}

Status Controller::RunRound(const std::vector<RequestMeta>& fresh, bool want_shutdown,
                            RoundResult* result) {
  Clock::time_point now = Clock::now();
  Classify(fresh, now);
  // With work pending here the others are probably about to arrive: wait for
  // them spinning (latency); an idle round sleeps while it waits (CPU).
  const bool busy = !cached_waiting_.empty() || !to_send_.empty() || want_shutdown;
  std::vector<uint64_t> bits = PackBits(want_shutdown, now);
  BRAID_RETURN_IF_ERROR(channel_->AllreduceBitAnd(&bits, busy ? kBusySpinUs : kIdleSpinUs));

  uint64_t flags = ~bits[0];
  std::vector<uint32_t> stale;
  ForEachSlot(bits, 1 + cache_words_, cache_.capacity(), /*flip=*/true,  // inverted
              [&](uint32_t slot) { stale.push_back(slot); });
  ApplyInvalidations(stale);
  TakeCacheHits(bits, result);
  // Every rank decodes the same joined set from the AND, so the choices below
  // (negotiate or not, finish the join) are the same everywhere.
  std::vector<bool> joined_before = std::move(joined_);
  joined_ = JoinedRanks(bits);
  const bool any_joined = std::find(joined_.begin(), joined_.end(), true) != joined_.end();
  const bool all_joined = std::find(joined_.begin(), joined_.end(), false) == joined_.end();
  const bool join_grew = joined_ != joined_before;
  if (any_joined) RouteCachedThroughRoot();
  result->joined_here = joined_[rank_];
  result->shutdown = flags & kFlagShutdown;
  // A grown joined set may complete names waiting in rank 0's table.
  result->negotiated = (flags & kFlagUncached) || !stale.empty() || join_grew ||
                       (any_joined && (flags & kFlagCachedWait));
  if (result->negotiated) BRAID_RETURN_IF_ERROR(Negotiate(result));
  if (all_joined) FinishJoin(joined_before, result);
  result->waiting_here = !cached_waiting_.empty() || !to_send_.empty() || join_pending_;
  result->anyone_waiting =
      (flags & kFlagWaiting) || result->waiting_here || (table_ && !table_->empty());
  return Status::OK();
}

std::vector<bool> Controller::JoinedRanks(const std::vector<uint64_t>& bits) const {
  std::vector<bool> joined(static_cast<size_t>(size_));
  for (int r = 0; r < size_; ++r) {
    // Inverted: a cleared bit means some rank (that rank) set it.
    joined[r] = !TestBit(bits, 1 + 2 * cache_words_, static_cast<uint32_t>(r));
  }
  return joined;
}

// A joined rank sets no cache bits for names it did not submit, so while any rank
// is joined a cache hit can never become ready by the AND: the waiting hits go
// through rank 0 this round instead of waiting out the cache patience.
void Controller::RouteCachedThroughRoot() {
  for (auto& kv : cached_waiting_) to_send_.push_back(std::move(kv.second.meta));
  cached_waiting_.clear();
}

// Every rank has joined: the join completes everywhere, after this round's other
// responses. Ranks that joined in the same round tie; the highest of them counts
// as the last (the order in which rank 0 would have read their lists).
void Controller::FinishJoin(const std::vector<bool>& joined_before, RoundResult* result) {
  Response join;
  join.meta.name = kJoinName;
  join.meta.collective = Collective::kJoin;
  join.meta.root = 0;
  for (int r = 0; r < size_; ++r)
    if (!joined_before[r]) join.meta.root = r;
  result->responses.push_back(std::move(join));
  join_pending_ = false;
  joined_.assign(static_cast<size_t>(size_), false);
  if (table_) table_->SetJoined(joined_);
}

Status Controller::Negotiate(RoundResult* result) {
  std::vector<std::string> lists;
  BRAID_RETURN_IF_ERROR(channel_->GatherToRoot(EncodeRequests(to_send_), &lists));
  to_send_.clear();
  std::string answer;
  Status decided;
  if (rank_ == 0) {
    std::vector<Response> responses;
    DecideOnRoot(lists, &responses, &decided);
    // When rank 0 cannot decide, every rank stops with its reason.
    answer = decided.ok() ? EncodeResponses(responses) : EncodeFailure(decided);
  }
  BRAID_RETURN_IF_ERROR(channel_->BroadcastFromRoot(&answer));
  std::vector<Response> responses;
  BRAID_RETURN_IF_ERROR(DecodeResponses(answer, &responses));
  Remember(responses);
  for (auto& r : responses) result->responses.push_back(std::move(r));
  return Status::OK();
}

void Controller::DecideOnRoot(const std::vector<std::string>& lists, std::vector<Response>* out,
                              Status* status) {
  Clock::time_point now = Clock::now();
  for (const std::string& name : table_->SetJoined(joined_))
    out->push_back(table_->TakeResponse(name));
  for (int r = 0; r < static_cast<int>(lists.size()); ++r) {
    std::vector<RequestMeta> metas;
    *status = DecodeRequests(lists[r], &metas);
    if (!status->ok()) {
      *status = Status(status->code(), "rank 0 could not read the ready list of rank " +
                                           std::to_string(r) + ": " + status->message());
      return;
    }
    for (const RequestMeta& meta : metas) {
      if (table_->Add(r, meta, now)) out->push_back(table_->TakeResponse(meta.name));
    }
  }
  if (stall_->Due(now)) stall_->Inspect(table_.get(), now, out);
}

void Controller::Remember(const std::vector<Response>& responses) {
  if (cache_.capacity() == 0) return;
  for (const Response& response : responses) {
    if (response.is_error()) continue;
    bool evicted = false;
    uint32_t slot = cache_.Put(response, &evicted);
    if (!evicted) continue;
    // The slot now holds another name: a request still waiting on the old one
    // goes through rank 0 next round.
    auto it = cached_waiting_.find(slot);
    if (it != cached_waiting_.end()) {
      to_send_.push_back(it->second.meta);
      cached_waiting_.erase(it);
    }
  }
}

}  // namespace braid
