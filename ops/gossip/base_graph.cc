// The Base-(k+1) graph (Takezawa et al., NeurIPS 2023): a periodic sequence of
// mixing matrices, each of maximum degree k, whose product over one period is
// exactly J/n for every n (finite-time consensus). This is the paper's simple
// Base-(k+1) construction, without the extra edges its full version adds between
// ranks whose values are already equal (those edges do not change the product).
//
// k-peer hyper-hypercube: when n = f_0 f_1 ... f_(m-1) with every f_s <= k+1,
// write each rank in mixed radix (digit s in [0, f_s)). At phase s every rank
// averages with the f_s - 1 ranks that differ from it only in digit s (a clique,
// mixing weight 1/f_s). After the m phases every rank holds the exact average.
//
// Any other n: write n in base k+1, n = sum_l a_l (k+1)^(p_l) with p_0 > p_1 > ...
// and 1 <= a_l <= k, and split the ranks into groups V_l of n_l = a_l (k+1)^(p_l)
// consecutive ranks; V_l is a_l sub-blocks of (k+1)^(p_l) ranks.
//  1. Every group runs its own hyper-hypercube (the longest takes H phases;
//     shorter ones then idle): V_l holds its average y_l.
//  2. At phase H + l (l = 0 .. L-2) every rank i of V_(l+1) u ... u V_(L-1) (S_(l+1)
//     ranks, fewer than (k+1)^(p_l)) pairs with one fresh rank j in each of the
//     a_l sub-blocks of V_l: W[i][j] = W[j][i] = w = n_l / (S_l a_l), W[i][i] =
//     1 - n_l / S_l, W[j][j] = 1 - w, where S_l = n_l + ... + n_(L-1). Since V_l
//     is at consensus, every rank after V_l moves by the same amount (the later
//     groups stay at consensus each), and the mass V_l gives away comes back:
//     the later ranks' average becomes the average of V_l u ... u V_(L-1).
//  3. From phase H + l + 1, V_l runs the hyper-hypercube (p_l phases of k+1) in
//     each sub-block; every sub-block received exactly w (x_i - y_l) from each
//     later rank i, so its average is then the average over V_l u ... u V_(L-1),
//     that is, by induction over l, the global average.
// The pairing and sub-block phases of different groups touch disjoint ranks, so
// they share phases; the period is H + 1 + p_0 at most.
#include <algorithm>
#include <string>
#include <vector>

#include "ops/gossip/topology.h"

namespace braid::gossip {
namespace {

// Factors of m, each in [2, k+1], largest first; false when a prime factor of m
// exceeds k+1 (m = 1: no factor).
bool CliqueFactors(int m, int k, std::vector<int>* factors) {
  factors->clear();
  for (int f = k + 1; f >= 2 && m > 1; --f) {
    while (m % f == 0) {
      factors->push_back(f);
      m /= f;
    }
  }
  return m == 1;
}

// Adds the hyper-hypercube on ranks [begin, begin + m) (m = product of factors)
// to phases first, first + 1, ...
void AddHyperHypercube(int begin, int m, const std::vector<int>& factors, size_t first,
                       std::vector<SparseRows>* phases) {
  int stride = 1;
  for (size_t s = 0; s < factors.size(); ++s) {
    const int f = factors[s];
    SparseRows& rows = (*phases)[first + s];
    for (int local = 0; local < m; ++local) {
      const int digit = (local / stride) % f;
      for (int c = 0; c < f; ++c) {
        rows[begin + local].push_back({begin + local + (c - digit) * stride, 1.0 / f});
      }
    }
    stride *= f;
  }
}

struct Group {
  int begin = 0;  // first rank
  int size = 0;   // n_l = a_l (k+1)^(p_l)
  int a = 0;      // a_l: number of sub-blocks
  int p = 0;      // p_l
  int block = 0;  // (k+1)^(p_l): ranks per sub-block
};

// The base-(k+1) digits of n as groups, largest first.
std::vector<Group> SplitGroups(int n, int k) {
  int64_t block = 1;
  int p = 0;
  while (block * (k + 1) <= n) {
    block *= k + 1;
    ++p;
  }
  std::vector<Group> groups;
  int begin = 0, rest = n;
  for (; rest > 0; block /= k + 1, --p) {
    if (rest < block) continue;
    Group g;
    g.begin = begin;
    g.a = static_cast<int>(rest / block);
    g.block = static_cast<int>(block);
    g.p = p;
    g.size = g.a * g.block;
    groups.push_back(g);
    begin += g.size;
    rest -= g.size;
  }
  return groups;
}

// Phase 2 for group l: the later ranks each pair with one rank per sub-block.
void AddPairing(const std::vector<Group>& groups, size_t l, SparseRows* rows) {
  const Group& g = groups[l];
  int64_t later = 0;
  for (size_t m = l; m < groups.size(); ++m) later += groups[m].size;  // S_l
  const double share = static_cast<double>(g.size) / static_cast<double>(later);
  const double w = share / g.a;
  std::vector<int> used(g.a, 0);  // ranks taken so far in each sub-block
  const int end = groups.back().begin + groups.back().size;
  for (int i = groups[l + 1].begin; i < end; ++i) {
    (*rows)[i].push_back({i, 1.0 - share});
    for (int q = 0; q < g.a; ++q) {
      const int j = g.begin + q * g.block + used[q]++;
      (*rows)[i].push_back({j, w});
      (*rows)[j].push_back({j, 1.0 - w});
      (*rows)[j].push_back({i, w});
    }
  }
}

}  // namespace

Status BuildBaseGraph(int size, int max_degree, std::vector<SparseRows>* phases,
                      std::string* description) {
  if (max_degree < 1) {
    return InvalidArgument("Base-(k+1) graph: maximum degree k must be >= 1, got " +
                           std::to_string(max_degree));
  }
  const int k = std::min(max_degree, std::max(1, size - 1));
  *description = "base-" + std::to_string(k + 1) + " (k=" + std::to_string(k) + ")";
  std::vector<int> factors;
  phases->clear();
  if (CliqueFactors(size, k, &factors)) {
    // One hyper-hypercube over all ranks (n = 1: the identity, one phase).
    phases->assign(std::max<size_t>(1, factors.size()), SparseRows(size));
    AddHyperHypercube(0, size, factors, 0, phases);
  } else {
    const std::vector<Group> groups = SplitGroups(size, k);
    size_t hyper = 0;  // H
    for (const Group& g : groups) {
      CliqueFactors(g.size, k, &factors);
      hyper = std::max(hyper, factors.size());
    }
    size_t period = hyper + groups.size() - 1;
    for (size_t l = 0; l + 1 < groups.size(); ++l) {
      period = std::max(period, hyper + l + 1 + groups[l].p);
    }
    phases->assign(period, SparseRows(size));
    std::string split;
    for (size_t l = 0; l < groups.size(); ++l) {
      const Group& g = groups[l];
      split += (l ? "+" : "") + std::to_string(g.size);
      CliqueFactors(g.size, k, &factors);
      AddHyperHypercube(g.begin, g.size, factors, 0, phases);
      if (l + 1 == groups.size()) continue;
      AddPairing(groups, l, &(*phases)[hyper + l]);
      const std::vector<int> block_factors(g.p, k + 1);
      for (int q = 0; q < g.a; ++q) {
        AddHyperHypercube(g.begin + q * g.block, g.block, block_factors, hyper + l + 1, phases);
      }
    }
    *description += ", groups " + split;
  }
  for (SparseRows& rows : *phases) {
    for (int i = 0; i < size; ++i) {
      if (rows[i].empty()) rows[i].push_back({i, 1.0});  // idle this phase
      NormalizeRow(&rows[i]);
    }
  }
  return Status::OK();
}

}  // namespace braid::gossip
