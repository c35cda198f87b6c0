// Selection kernels of the sparse methods (top-k with error memory, DGC, random-k)
// on flat buffers in host memory or on one GPU.
//
// Every selection orders elements by magnitude with the rules of magnitude.h
// (|x| by its bits; NaN counts as the largest magnitude, above +-inf; -0 == +0;
// ties: the smaller index first) and writes the selected indices in ascending
// order, with the values (the signed x[i], not |x|) in the same order. The host
// and the CUDA kernels select exactly the same entries in the same order.
//
// Buffers: `x` holds float16, bfloat16, float32 or float64 values; `indices` is
// int32 (only when every index fits) or int64, `values` has x's dtype, both hold
// at least the number of entries the call may write, on x's device. A `values`
// view with null data means "indices only". On a GPU the work is ordered on
// x.stream; only the calls that say so make the host wait.
//
// Bytes per element of x (b = the value size), n elements, k selected:
//   TopK (host)           reads x about once (the filter pass; the sample and the
//                         candidates are O(sample + k) more), writes k indices and values.
//   TopK (GPU)            reads x 2..9 times (one histogram pass per 8 bits of the key
//                         that is still undecided, then two compaction passes).
//   ThresholdTopK         reads x once per round (count, or on the host the
//                         candidate filter) and once more on a GPU to compact.
//   RandomK               reads k values (random access), writes k indices and values;
//                         O(k + n / 64) host work to draw the indices.
//
// Threading: every function is reentrant: calls on different buffers may run
// concurrently; a call must not share an output buffer with a concurrent call.
// The host kernels use up to SelectOptions::num_threads threads of their own.
#pragma once

#include <cstdint>
#include <vector>

#include "common/buffer.h"
#include "common/status.h"

namespace braid::compress {

struct SelectOptions {
  // Host threads (0: std::thread::hardware_concurrency()); small buffers use fewer.
  int num_threads = 0;
};

// Exact top-k by magnitude: the k first elements of the order above, 0 <= k <= n
// (k > n is an error).
Status TopK(const BufferView& x, int64_t k, const BufferView& indices, const BufferView& values,
            const SelectOptions& options = {});

// DGC's threshold estimate (Lin et al., ICLR 2018): sample ceil(sample_fraction * n)
// magnitudes at deterministic positions (magnitude.h, from `seed`), take the
// sample's top-ceil(k * m / n) threshold t, count the elements with |x| >= t and
// adapt t by x1.3 when more than 1.3 k pass or by x0.8 when fewer than k pass, at
// most `max_rounds` counting rounds (a round that overshoots right after one that
// undershot ends the search: raising again would only oscillate). The elements
// that pass the final t are then trimmed to the k largest (same order rules).
struct ThresholdOptions {
  double sample_fraction = 0.01;
  uint64_t seed = 0;
  int max_rounds = 10;
  int num_threads = 0;  // host threads, as SelectOptions
};

struct ThresholdResult {
  int64_t selected = 0;    // entries written: min(k, candidates)
  int64_t candidates = 0;  // elements with |x| >= the final threshold
  int rounds = 0;          // counting rounds run (1..max_rounds; 0 when k is 0 or n)
  double threshold = 0;    // the final threshold as a magnitude (inf: NaN only)
};

// The guarantee: the entries written are exactly the first `selected` elements of
// the exact top-k order, where selected = min(k, candidates). So when at least k
// elements reach the final threshold the result equals TopK's; fewer than k are
// written only when, after max_rounds rounds, fewer than k elements reach it (for
// example a buffer with fewer than k magnitudes above 0.8^9 times the sample's
// estimate), and those are then the largest ones. k == n selects everything
// without sampling.
Status ThresholdTopK(const BufferView& x, int64_t k, const BufferView& indices,
                     const BufferView& values, const ThresholdOptions& options,
                     ThresholdResult* result);

// Random-k: k distinct indices of [0, n), drawn from `seed` alone (the same seed on
// every rank gives the same indices everywhere, whatever the values), ascending,
// and x at them. Drawn on the host by Floyd's algorithm over a bitmap, integer
// arithmetic only; on a GPU they are copied to `indices` (the host waits) and the
// values gathered there.
Status RandomK(const BufferView& x, int64_t k, uint64_t seed, const BufferView& indices,
               const BufferView& values);

// RandomK's indices alone, into host memory (`count` >= k entries of index_dtype).
Status RandomKIndices(int64_t n, int64_t k, uint64_t seed, DataType index_dtype, void* indices);

// Segments of a fused buffer: offsets[0] = 0 <= offsets[1] <= ... <= offsets[s] =
// x.count; segment i is [offsets[i], offsets[i+1]).
//
// Per-tensor k: the top-k_per_segment[i] of each segment (each k_i <= its length),
// written one segment after another (so the indices, which are indices into the
// fused buffer, stay ascending); selected_per_segment (optional) receives k_i.
Status SegmentedTopK(const BufferView& x, const std::vector<int64_t>& offsets,
                     const std::vector<int64_t>& k_per_segment, const BufferView& indices,
                     const BufferView& values, std::vector<int64_t>* selected_per_segment,
                     const SelectOptions& options = {});

// One global k over the whole fused buffer: TopK's result, and how many of the
// selected entries fall in each segment.
Status SegmentedTopKGlobal(const BufferView& x, const std::vector<int64_t>& offsets, int64_t k,
                           const BufferView& indices, const BufferView& values,
                           std::vector<int64_t>* selected_per_segment,
                           const SelectOptions& options = {});

// Per-tensor density: k_i = min(len_i, ceil(density * len_i)), density in [0, 1].
Status KForDensity(const std::vector<int64_t>& offsets, double density,
                   std::vector<int64_t>* k_per_segment);

}  // namespace braid::compress
