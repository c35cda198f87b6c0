#include "core/stats.h"

#include <atomic>
#include <mutex>

namespace braid {
namespace {

constexpr int kKinds = kNumCollectives;

struct Counter {
  std::atomic<int64_t> count{0};
  std::atomic<int64_t> bytes{0};
  std::atomic<int64_t> index_bytes{0};
};

Counter* Counters() {
  static Counter counters[kKinds];
  return counters;
}

int Index(Collective c) {
  int i = static_cast<int>(c);
  return i >= 0 && i < kKinds ? i : -1;
}

// Bytes sent to each peer by the neighbour collectives, by peer rank.
struct PeerBytes {
  std::mutex mu;
  std::vector<int64_t> bytes;
};

PeerBytes* SentToPeers() {
  static PeerBytes peers;
  return &peers;
}

}  // namespace

void RecordNeighborSends(const std::vector<std::pair<int, int64_t>>& sends) {
  PeerBytes* p = SentToPeers();
  std::lock_guard<std::mutex> lock(p->mu);
  for (const auto& [peer, bytes] : sends) {
    if (peer < 0) continue;
    if (p->bytes.size() <= static_cast<size_t>(peer)) p->bytes.resize(peer + 1, 0);
    p->bytes[peer] += bytes;
  }
}

std::vector<int64_t> ReadNeighborSends() {
  PeerBytes* p = SentToPeers();
  std::lock_guard<std::mutex> lock(p->mu);
  return p->bytes;
}

void RecordCollective(Collective collective, int64_t bytes, int64_t index_bytes) {
  int i = Index(collective);
  if (i < 0) return;
  Counters()[i].count.fetch_add(1, std::memory_order_relaxed);
  Counters()[i].bytes.fetch_add(bytes, std::memory_order_relaxed);
  Counters()[i].index_bytes.fetch_add(index_bytes, std::memory_order_relaxed);
}

CollectiveCounts ReadStats(Collective collective) {
  CollectiveCounts out;
  int i = Index(collective);
  if (i < 0) return out;
  out.count = Counters()[i].count.load(std::memory_order_relaxed);
  out.bytes = Counters()[i].bytes.load(std::memory_order_relaxed);
  out.index_bytes = Counters()[i].index_bytes.load(std::memory_order_relaxed);
  return out;
}

void ResetStats() {
  {
    PeerBytes* p = SentToPeers();
    std::lock_guard<std::mutex> lock(p->mu);
    p->bytes.clear();
  }
  for (int i = 0; i < kKinds; ++i) {
    Counters()[i].count.store(0, std::memory_order_relaxed);
    Counters()[i].bytes.store(0, std::memory_order_relaxed);
    Counters()[i].index_bytes.store(0, std::memory_order_relaxed);
  }
}

}  // namespace braid
