// What tests/unit/test_decentralized.cc builds its checks from, written from the
// paper and the graph definitions, independently of the library:
//
//  - DenseW: the mixing matrices W_t of the ring (1/3 each), the complete graph
//    (J/n) and the one-peer exponential graph (1/2 self, 1/2 from i - 2^s with
//    s = t mod ceil(log2 n)), as docs/gossip_graphs.md defines them;
//  - Reference: every rank's x and u under Algorithm 2 of Yu, Jin, Yang (ICML
//    2019), all n ranks simulated in double;
//  - FakeWorld: n ranks in one process (one thread each) whose requests meet by
//    name: a neighbour allreduce mixes the ranks' tensors with the weights each
//    sent (after checking that send_to and recv_from form one graph), an
//    allreduce sums them in rank order.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/request.h"
#include "ops/gossip/decentralized.h"

namespace braid::gossip::testing {

using Matrix = std::vector<std::vector<double>>;

inline Matrix DenseW(const std::string& kind, int n, int64_t t) {
  Matrix w(n, std::vector<double>(n, 0.0));
  if (kind == "complete" || (kind == "ring" && n <= 3)) {
    for (auto& row : w)
      for (double& v : row) v = 1.0 / n;
  } else if (kind == "ring") {
    for (int i = 0; i < n; ++i)
      for (int d : {-1, 0, 1}) w[i][((i + d) % n + n) % n] = 1.0 / 3;
  } else if (kind == "one_peer_exponential") {
    int rounds = 0;
    while ((1 << rounds) < n) ++rounds;
    for (int i = 0; i < n; ++i) w[i][i] = n == 1 ? 1.0 : 0.5;
    if (n > 1) {
      const int hop = 1 << (t % rounds);
      for (int i = 0; i < n; ++i) w[i][((i - hop) % n + n) % n] += 0.5;
    }
  }
  return w;
}

struct Hyper {
  double beta = 0.9;
  bool nesterov = false;
  bool mix_momentum = true;
  int64_t average_period = 0;
  double weight_decay = 0.0;
};

// Every rank's parameters and momentum, stepped by the paper's equations.
struct Reference {
  std::vector<std::vector<double>> x, u;

  // One step with gradients g (per rank) and mixing matrix w; `average`: the exact
  // average over the ranks instead of the mixing.
  void Step(const std::vector<std::vector<double>>& g, double lr, const Hyper& h, const Matrix& w,
            bool average) {
    const size_t n = x.size(), d = x[0].size();
    for (size_t i = 0; i < n; ++i) {
      for (size_t e = 0; e < d; ++e) {
        const double gi = g[i][e] + h.weight_decay * x[i][e];
        u[i][e] = h.beta * u[i][e] + gi;                                 // u~
        x[i][e] -= lr * (h.nesterov ? h.beta * u[i][e] + gi : u[i][e]);  // x~
      }
    }
    if (average) {
      x = Averaged(x);
      u = Averaged(u);
      return;
    }
    x = Mixed(w, x);
    if (h.mix_momentum) u = Mixed(w, u);
  }

  static std::vector<std::vector<double>> Mixed(const Matrix& w,
                                                const std::vector<std::vector<double>>& v) {
    std::vector<std::vector<double>> out(v.size(), std::vector<double>(v[0].size(), 0.0));
    for (size_t i = 0; i < v.size(); ++i)
      for (size_t j = 0; j < v.size(); ++j)
        for (size_t e = 0; e < v[0].size(); ++e) out[i][e] += w[i][j] * v[j][e];
    return out;
  }

  static std::vector<std::vector<double>> Averaged(const std::vector<std::vector<double>>& v) {
    std::vector<double> mean(v[0].size(), 0.0);
    for (const auto& r : v)
      for (size_t e = 0; e < r.size(); ++e) mean[e] += r[e] / static_cast<double>(v.size());
    return std::vector<std::vector<double>>(v.size(), mean);
  }
};

class FakeWorld {
 public:
  explicit FakeWorld(int n) : n_(n) {}

  EnqueueFn Enqueue(int rank) {
    return [this, rank](Request r, std::shared_ptr<Handle>* h) {
      *h = std::make_shared<Handle>();
      std::lock_guard<std::mutex> lock(mu_);
      names_[rank].push_back(r.meta.name);
      auto& slot = pending_[r.meta.name];
      slot.resize(static_cast<size_t>(n_));
      slot[rank] = {std::move(r), *h};
      if (++arrived_[slot[rank].request.meta.name] == n_) Execute(slot);
      return Status::OK();
    };
  }

  // The request names rank `rank` sent, in order.
  std::vector<std::string> names(int rank) {
    std::lock_guard<std::mutex> lock(mu_);
    return names_[rank];
  }
  // The last neighbour allreduce request of each rank.
  std::vector<RequestMeta> last_mix() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_mix_;
  }

 private:
  struct Entry {
    Request request;
    std::shared_ptr<Handle> handle;
  };

  void Execute(std::vector<Entry>& all) {
    const RequestMeta& m0 = all[0].request.meta;
    Status st = Agree(all);
    if (st.ok() && m0.dtype == DataType::kFloat64) {
      Run<double>(all);
    } else if (st.ok()) {
      Run<float>(all);
    }
    if (m0.collective == Collective::kNeighborAllreduce) {
      last_mix_.clear();
      for (const Entry& e : all) last_mix_.push_back(e.request.meta);
    }
    const std::string name = m0.name;
    for (Entry& e : all) e.handle->Complete(st);
    pending_.erase(name);
    arrived_.erase(name);
  }

  // The ranks agree on the request, and i sends to j exactly when j receives from i.
  Status Agree(const std::vector<Entry>& all) const {
    const RequestMeta& m0 = all[0].request.meta;
    for (int i = 0; i < n_; ++i) {
      const RequestMeta& m = all[i].request.meta;
      if (m.collective != m0.collective || m.dtype != m0.dtype || m.shape != m0.shape)
        return Status(StatusCode::kMismatch, "the ranks disagree on " + m0.name);
      for (int32_t j : m.recv_from) {
        const auto& s = all[j].request.meta.send_to;
        if (std::find(s.begin(), s.end(), i) == s.end())
          return Status(StatusCode::kMismatch, "edge mismatch in " + m0.name);
      }
      size_t expected_sends = 0;
      for (int j = 0; j < n_; ++j) {
        const auto& r = all[j].request.meta.recv_from;
        expected_sends += std::count(r.begin(), r.end(), i);
      }
      if (expected_sends != m.send_to.size())
        return Status(StatusCode::kMismatch, "send list mismatch in " + m0.name);
    }
    return Status::OK();
  }

  template <typename T>
  void Run(std::vector<Entry>& all) {
    const int64_t count = all[0].request.meta.NumElements();
    std::vector<std::vector<T>> in(n_);
    for (int i = 0; i < n_; ++i) {
      const T* p = static_cast<const T*>(all[i].request.input);
      in[i].assign(p, p + count);
    }
    for (int i = 0; i < n_; ++i) {
      const Request& r = all[i].request;
      T* out = static_cast<T*>(r.output);
      for (int64_t e = 0; e < count; ++e) {
        if (r.meta.collective == Collective::kAllreduce) {
          T acc = 0;
          for (int j = 0; j < n_; ++j) acc += in[j][e];
          out[e] = acc;
          continue;
        }
        T acc = static_cast<T>(r.self_weight) * in[i][e];
        for (size_t k = 0; k < r.meta.recv_from.size(); ++k)
          acc += static_cast<T>(r.recv_weights[k]) * in[r.meta.recv_from[k]][e];
        out[e] = acc;
      }
    }
  }

  const int n_;
  std::mutex mu_;
  std::map<std::string, std::vector<Entry>> pending_;
  std::map<std::string, int> arrived_;
  std::map<int, std::vector<std::string>> names_;
  std::vector<RequestMeta> last_mix_;
};

}  // namespace braid::gossip::testing
