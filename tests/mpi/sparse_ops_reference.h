// A reference for the sparse training ops (M-DSGD, GMC, DGC) written from their
// equations, independently of the library: it simulates every rank in double
// precision (every rank's gradients are a function of rank, step and index, so
// each rank can compute all of them), selects by a full sort (|x| descending,
// ties to the smaller index), and keeps each rank's memory and momentum. Used by
// tests/mpi/test_c_api_sparse_ops*.cc.
//
// The flat layout is the op's: the sparse tensors in order, then the dense ones.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

namespace sor {

enum Method { kMdsgd, kGmc, kDgc };

struct SimOptions {
  Method method = kGmc;
  double beta = 0.9;
  bool nesterov = false;
  double weight_decay = 0.0;
  double clip_norm = 0.0;
  bool global = false;
  std::vector<int64_t> sizes;  // in layout order (sparse tensors first)
  std::vector<bool> dense;     // per tensor in layout order (empty: none)
};

// Rank r's gradient of element i at step t: distinct magnitudes, signs mixed.
inline double Grad(int r, int t, int64_t i, int salt = 0) {
  return std::sin(0.37 * static_cast<double>(i) + 1.3 * r + 0.71 * t + 0.13 * salt) *
         (1.0 + static_cast<double>((i * 7 + r) % 5));
}

inline int64_t KOf(double density, int64_t n) {
  return std::min(n, std::max<int64_t>(0, static_cast<int64_t>(std::ceil(density * n))));
}

// The k largest |x[lo..hi)| (ties: smaller index), ascending.
inline std::vector<int64_t> TopK(const std::vector<double>& x, int64_t lo, int64_t hi, int64_t k) {
  std::vector<int64_t> idx(static_cast<size_t>(hi - lo));
  std::iota(idx.begin(), idx.end(), lo);
  std::stable_sort(idx.begin(), idx.end(),
                   [&](int64_t a, int64_t b) { return std::fabs(x[a]) > std::fabs(x[b]); });
  idx.resize(static_cast<size_t>(k));
  std::sort(idx.begin(), idx.end());
  return idx;
}

class Sim {
 public:
  Sim(const SimOptions& o, int ranks, std::vector<double> w0) : o_(o), n_(ranks), w(std::move(w0)) {
    const size_t total = w.size();
    e.assign(n_, std::vector<double>(total, 0.0));
    a.assign(n_, std::vector<double>(total, 0.0));
    U.assign(total, 0.0);
    int64_t off = 0;
    for (size_t i = 0; i < o_.sizes.size(); ++i) {
      offsets.push_back(off);
      off += o_.sizes[i];
      if (!IsDense(i)) sparse_total = off;
    }
    offsets.push_back(off);
  }

  bool IsDense(size_t t) const { return !o_.dense.empty() && o_.dense[t]; }

  // The selections of rank r for z (per tensor, or global over the sparse run).
  std::vector<int64_t> Select(const std::vector<double>& x, double density) const {
    if (o_.global) return TopK(x, 0, sparse_total, KOf(density, sparse_total));
    std::vector<int64_t> out;
    for (size_t t = 0; t < o_.sizes.size(); ++t) {
      if (IsDense(t)) continue;
      auto s = TopK(x, offsets[t], offsets[t + 1], KOf(density, o_.sizes[t]));
      out.insert(out.end(), s.begin(), s.end());
    }
    return out;
  }

  // One step. grads[r]: rank r's gradient in layout order. given: the selection of
  // each rank, when the test takes it from the op (random-k, threshold); else top-k.
  void Step(double lr, double density, const std::vector<std::vector<double>>& grads,
            const std::vector<std::vector<int64_t>>* given = nullptr) {
    Build(lr, grads);
    Finish(lr, density, given);
  }

  // The first half of a step: g', the momentum and z of every rank.
  void Build(double lr, const std::vector<std::vector<double>>& grads) {
    const size_t total = w.size();
    z.assign(n_, std::vector<double>(total, 0.0));
    gp_.assign(n_, std::vector<double>(total, 0.0));
    for (int r = 0; r < n_; ++r) {
      for (size_t i = 0; i < total; ++i) gp_[r][i] = grads[r][i] + o_.weight_decay * w[i];
      Clip(&gp_[r]);
      BuildZ(r, lr, gp_[r]);
    }
  }

  // The second half: selection, memory, the average and the parameters.
  void Finish(double lr, double density, const std::vector<std::vector<int64_t>>* given) {
    const size_t total = w.size();
    std::vector<double> avg(total, 0.0), dense_avg_g(total, 0.0);
    chosen.assign(n_, {});
    for (int r = 0; r < n_; ++r) {
      chosen[r] = given ? (*given)[r] : Select(z[r], density);
      std::vector<double> sent(total, 0.0);
      for (int64_t i : chosen[r]) sent[i] = z[r][i];
      for (size_t i = 0; i < total; ++i) {
        if (!IsDenseElement(i)) continue;
        if (o_.method == kDgc) {
          dense_avg_g[i] += gp_[r][i] / n_;
        } else {
          sent[i] = z[r][i];
        }
      }
      for (size_t i = 0; i < total; ++i) {
        if (o_.method != kDgc) e[r][i] = z[r][i] - sent[i];  // 0 where sent
        avg[i] += sent[i] / n_;
      }
      if (o_.method == kDgc) MaskDgc(r);
    }
    Apply(lr, avg, dense_avg_g);
  }

  std::vector<int64_t> offsets;
  int64_t sparse_total = 0;
  std::vector<double> w, U;
  std::vector<std::vector<double>> e, a, z;  // memory (DGC: v), momentum (DGC: u), last z
  std::vector<std::vector<int64_t>> chosen;

 private:
  bool IsDenseElement(size_t i) const {
    for (size_t t = 0; t < o_.sizes.size(); ++t) {
      if (static_cast<int64_t>(i) >= offsets[t] && static_cast<int64_t>(i) < offsets[t + 1])
        return IsDense(t);
    }
    return false;
  }

  void Clip(std::vector<double>* gp) const {
    if (o_.clip_norm <= 0.0) return;
    double sq = 0.0;
    for (double v : *gp) sq += v * v;
    const double limit = o_.clip_norm / std::sqrt(static_cast<double>(n_));
    const double norm = std::sqrt(sq);
    if (norm <= limit) return;
    for (double& v : *gp) v *= limit / norm;
  }

  void BuildZ(int r, double lr, const std::vector<double>& gp) {
    for (size_t i = 0; i < gp.size(); ++i) {
      const bool dense = IsDenseElement(i);
      switch (o_.method) {
        case kMdsgd:
          a[r][i] = o_.beta * a[r][i] + gp[i];
          z[r][i] = e[r][i] + lr * (o_.nesterov ? gp[i] + o_.beta * a[r][i] : a[r][i]);
          break;
        case kGmc:
          z[r][i] = e[r][i] + lr * gp[i] + o_.beta * U[i];
          break;
        case kDgc:
          if (dense) break;  // momentum SGD on the average, in Apply
          if (o_.nesterov) {
            a[r][i] = o_.beta * (a[r][i] + gp[i]);
            e[r][i] = e[r][i] + a[r][i] + gp[i];
          } else {
            a[r][i] = o_.beta * a[r][i] + gp[i];
            e[r][i] = e[r][i] + a[r][i];
          }
          z[r][i] = e[r][i];
          break;
      }
    }
  }

  void MaskDgc(int r) {
    for (int64_t i : chosen[r]) e[r][i] = 0.0, a[r][i] = 0.0;
  }

  void Apply(double lr, const std::vector<double>& avg, const std::vector<double>& dense_g) {
    for (size_t i = 0; i < w.size(); ++i) {
      if (o_.method != kDgc) {
        w[i] -= avg[i];
        U[i] = avg[i];
        continue;
      }
      if (!IsDenseElement(i)) {
        w[i] -= lr * avg[i];
        continue;
      }
      for (int r = 0; r < n_; ++r) a[r][i] = o_.beta * a[r][i] + dense_g[i];
      const double m = a[0][i];
      w[i] -= lr * (o_.nesterov ? dense_g[i] + o_.beta * m : m);
    }
  }

  SimOptions o_;
  int n_;
  std::vector<std::vector<double>> gp_;
};

}  // namespace sor
