// The passes the host selection kernels are built from (topk_host.cc): the
// candidate filter, the ordered write at a known k-th key, the radix select of the
// k-th key and the finish on collected candidates. Internal to ops/compress/.
//
// Every pass works in chunks of the buffer (parallel.h): chunk c covers
// [ChunkBegin(n, chunks, c), ChunkBegin(n, chunks, c + 1)), so the chunks' results,
// taken in chunk order, are in ascending index order.
//
// Threading: each function runs its chunks on threads of its own and returns
// when they are done; the caller's buffers must not change meanwhile.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <type_traits>
#include <vector>

#include "ops/compress/device_kernels.h"
#include "ops/compress/magnitude.h"
#include "ops/compress/parallel.h"

namespace braid::compress::host {

template <typename K>
using BitsOf = typename K::Bits;

// Writes selected element i at output position pos: its index (plus the base) and,
// when asked for, its value.
template <typename K>
struct Writer {
  const BitsOf<K>* x;
  const DeviceSelectionOut& out;

  void Put(int64_t pos, int64_t i) const {
    if (out.index_dtype == DataType::kInt64) {
      static_cast<int64_t*>(out.indices)[pos] = i + out.index_base;
    } else {
      static_cast<int32_t*>(out.indices)[pos] = static_cast<int32_t>(i + out.index_base);
    }
    if (out.values != nullptr) static_cast<BitsOf<K>*>(out.values)[pos] = x[i];
  }
};

// What the filter pass found in one chunk for a threshold key t.
struct ChunkScan {
  std::vector<int64_t> above;  // indices with a key > t, ascending, up to the cap
  int64_t above_count = 0;     // every one, also past the cap
  int64_t equal_count = 0;     // keys == t
  bool overflow = false;       // `above` stopped at the cap
};

// Appends [b, b + len) to s (up to the cap) where a key is above t, and counts the
// ties: a branch-free compaction (every index is written, the cursor moves only
// for a key above t).
template <typename K>
void FilterScalar(const BitsOf<K>* x, int64_t b, int64_t len, BitsOf<K> t, int64_t* buf, int* hits,
                  int64_t* equal) {
  for (int64_t j = 0; j < len; ++j) {
    const BitsOf<K> key = MagnitudeKey<K>(x[b + j]);
    buf[*hits] = b + j;
    *hits += key > t;
    *equal += key == t;
  }
}

// The vectorised form for a threshold below NaN's key: then the raw |x| bits
// compare with t as the keys do (every NaN pattern is above t and none equals it),
// and, as the sign bit is clear, as signed integers (SSE2 has signed compares
// only). Each group of 16 is tested with SIMD compares first; the scalar
// compaction runs only for the groups that hold a candidate (a few percent).
template <typename K>
void FilterGroups(const BitsOf<K>* x, int64_t b, int64_t len, BitsOf<K> t, int64_t* buf, int* hits,
                  int64_t* equal) {
  using S = std::make_signed_t<BitsOf<K>>;
  constexpr int kGroup = 16;
  const auto* xs = reinterpret_cast<const S*>(x);
  const auto mask = static_cast<S>(K::kAbsMask), ts = static_cast<S>(t);
  int64_t g = b;
  for (; g + kGroup <= b + len; g += kGroup) {
    int above = 0, eq = 0;
    for (int j = 0; j < kGroup; ++j) {
      const S key = static_cast<S>(xs[g + j] & mask);
      above += key > ts;
      eq += key == ts;
    }
    *equal += eq;
    if (above == 0) continue;
    for (int j = 0; j < kGroup; ++j) {
      buf[*hits] = g + j;
      *hits += static_cast<S>(xs[g + j] & mask) > ts;
    }
  }
  FilterScalar<K>(x, g, b + len - g, t, buf, hits, equal);
}

// The filter pass over one chunk, a block of indices at a time.
template <typename K>
void FilterChunk(const BitsOf<K>* x, int64_t begin, int64_t end, BitsOf<K> t, size_t cap,
                 ChunkScan* s) {
  constexpr int kBlock = 1024;
  int64_t buf[kBlock];
  for (int64_t b = begin; b < end; b += kBlock) {
    const int64_t len = std::min<int64_t>(kBlock, end - b);
    int hits = 0;
    int64_t equal = 0;
    if (t < NanKey<K>()) {
      FilterGroups<K>(x, b, len, t, buf, &hits, &equal);
    } else {
      FilterScalar<K>(x, b, len, t, buf, &hits, &equal);
    }
    s->above_count += hits;
    s->equal_count += equal;
    if (s->overflow) continue;
    if (s->above.size() + hits > cap) {
      s->overflow = true;
      s->above.clear();
      s->above.shrink_to_fit();
    } else {
      s->above.insert(s->above.end(), buf, buf + hits);
    }
  }
}

template <typename K>
std::vector<ChunkScan> Filter(const BitsOf<K>* x, int64_t n, BitsOf<K> t, int chunks, size_t cap) {
  std::vector<ChunkScan> scans(chunks);
  ParallelChunks(n, chunks,
                 [&](int c, int64_t b, int64_t e) { FilterChunk<K>(x, b, e, t, cap, &scans[c]); });
  return scans;
}

// Writes every element with a key above T and the first `take` (by index) equal to
// T, in ascending index order. `scans` may hold the per-chunk counts for T (from a
// filter pass with the same chunks); otherwise a counting pass finds them.
template <typename K>
void WriteByThreshold(const BitsOf<K>* x, int64_t n, BitsOf<K> T, int64_t take, int chunks,
                      const std::vector<ChunkScan>* scans, const Writer<K>& w) {
  std::vector<int64_t> above(chunks), equal(chunks);
  if (scans != nullptr) {
    for (int c = 0; c < chunks; ++c) above[c] = (*scans)[c].above_count;
    for (int c = 0; c < chunks; ++c) equal[c] = (*scans)[c].equal_count;
  } else {
    ParallelChunks(n, chunks, [&](int c, int64_t b, int64_t e) {
      int64_t a = 0, q = 0;
      for (int64_t i = b; i < e; ++i) {
        const BitsOf<K> key = MagnitudeKey<K>(x[i]);
        a += key > T;
        q += key == T;
      }
      above[c] = a;
      equal[c] = q;
    });
  }
  // The ties at T go to the first chunks first: that is "smaller index first".
  std::vector<int64_t> quota(chunks), offset(chunks);
  int64_t remaining = take, pos = 0;
  for (int c = 0; c < chunks; ++c) {
    quota[c] = std::min(equal[c], remaining);
    remaining -= quota[c];
    offset[c] = pos;
    pos += above[c] + quota[c];
  }
  ParallelChunks(n, chunks, [&](int c, int64_t b, int64_t e) {
    int64_t p = offset[c], taken = 0;
    for (int64_t i = b; i < e; ++i) {
      const BitsOf<K> key = MagnitudeKey<K>(x[i]);
      const bool tie = key == T;
      if (key > T || (tie && taken < quota[c])) {
        w.Put(p++, i);
        taken += tie;
      }
    }
  });
}

// The k-th largest key T (1 <= k <= n) by radix select, 8 bits at a time from the
// top, and how many elements equal to T belong to the top k.
template <typename K>
void RadixSelect(const BitsOf<K>* x, int64_t n, int64_t k, int chunks, BitsOf<K>* T,
                 int64_t* take) {
  using Bits = BitsOf<K>;
  Bits prefix = 0, mask = 0;
  int64_t remaining = k;
  for (int shift = static_cast<int>(sizeof(Bits)) * 8 - 8; shift >= 0; shift -= 8) {
    std::vector<std::vector<int64_t>> hist(chunks, std::vector<int64_t>(256, 0));
    ParallelChunks(n, chunks, [&](int c, int64_t b, int64_t e) {
      int64_t* h = hist[c].data();
      for (int64_t i = b; i < e; ++i) {
        const Bits key = MagnitudeKey<K>(x[i]);
        if ((key & mask) == prefix) ++h[(key >> shift) & 0xff];
      }
    });
    int digit = 255;
    for (; digit > 0; --digit) {
      int64_t count = 0;
      for (int c = 0; c < chunks; ++c) count += hist[c][digit];
      if (remaining <= count) break;
      remaining -= count;
    }
    prefix = static_cast<Bits>(prefix | (static_cast<Bits>(digit) << shift));
    mask = static_cast<Bits>(mask | (static_cast<Bits>(0xff) << shift));
  }
  *T = prefix;
  *take = remaining;
}

// The top k (1 <= k <= total) of collected candidates (every element with a key
// above some t, where at least k have one): nth_element on their keys finds the
// k-th key T, then the candidates are written in index order.
template <typename K>
void FinishOnCandidates(const BitsOf<K>* x, const std::vector<ChunkScan>& scans, int64_t k,
                        const Writer<K>& w) {
  using Bits = BitsOf<K>;
  size_t collected = 0;
  for (const ChunkScan& s : scans) collected += s.above.size();
  std::vector<Bits> keys;
  keys.reserve(collected);
  for (const ChunkScan& s : scans) {
    for (int64_t i : s.above) keys.push_back(MagnitudeKey<K>(x[i]));
  }
  const int64_t total = static_cast<int64_t>(keys.size());
  Bits T = 0;
  int64_t take = total;
  if (total > k) {
    std::nth_element(keys.begin(), keys.begin() + (k - 1), keys.end(), std::greater<Bits>());
    T = keys[k - 1];
    take = k - std::count_if(keys.begin(), keys.begin() + (k - 1), [T](Bits v) { return v > T; });
  }
  int64_t pos = 0, taken = 0;
  for (const ChunkScan& s : scans) {
    for (int64_t i : s.above) {
      const Bits key = MagnitudeKey<K>(x[i]);
      if (total <= k || key > T || (key == T && taken++ < take)) w.Put(pos++, i);
    }
  }
}

}  // namespace braid::compress::host
