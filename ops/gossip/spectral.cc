// Dense mixing matrices and their spectral gap, for tests, docs and the API's
// report of how fast a graph reaches consensus.
//
// The gap is 1 - sigma_2 with sigma_2 = ||W - J/n||_2: the consensus error
// x - avg(x) lives off the ones vector, where W acts as W - J/n (W 1 = 1 and
// 1^T W = 1^T for doubly stochastic W). The singular values come from one-sided
// Jacobi (Hestenes): plane rotations orthogonalize the columns of W - J/n, whose
// norms are then the singular values. Each value is accurate to a few units of
// rounding times ||W||_F (about 1e-14 for n <= 64), also near zero, where an
// eigenvalue solve on (W - J/n)^T (W - J/n) would lose half the digits.
#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/gossip/graph.h"

namespace braid::gossip {
namespace {

constexpr int kMaxSweeps = 100;

// One rotation of columns p and q (column-major, n rows) making them orthogonal;
// false when they already are (to rounding).
bool Rotate(std::vector<double>* cols, int n, int p, int q) {
  double* up = cols->data() + static_cast<size_t>(p) * n;
  double* uq = cols->data() + static_cast<size_t>(q) * n;
  double alpha = 0.0, beta = 0.0, gamma = 0.0;
  for (int r = 0; r < n; ++r) {
    alpha += up[r] * up[r];
    beta += uq[r] * uq[r];
    gamma += up[r] * uq[r];
  }
  if (gamma == 0.0 || std::fabs(gamma) <= 1e-15 * std::sqrt(alpha * beta)) return false;
  const double zeta = (beta - alpha) / (2.0 * gamma);
  const double t = (zeta >= 0 ? 1.0 : -1.0) / (std::fabs(zeta) + std::sqrt(1.0 + zeta * zeta));
  const double c = 1.0 / std::sqrt(1.0 + t * t);
  const double s = c * t;
  for (int r = 0; r < n; ++r) {
    const double a = up[r], b = uq[r];
    up[r] = c * a - s * b;
    uq[r] = s * a + c * b;
  }
  return true;
}

std::vector<double> Multiply(const std::vector<double>& a, const std::vector<double>& b, int n) {
  std::vector<double> c(static_cast<size_t>(n) * n, 0.0);
  for (int i = 0; i < n; ++i) {
    for (int k = 0; k < n; ++k) {
      const double v = a[static_cast<size_t>(i) * n + k];
      if (v == 0.0) continue;
      for (int j = 0; j < n; ++j) c[static_cast<size_t>(i) * n + j] += v * b[k * n + j];
    }
  }
  return c;
}

}  // namespace

std::vector<double> SingularValues(const std::vector<double>& a, int n) {
  // Column-major copy: column j of a is cols[j * n .. j * n + n).
  std::vector<double> cols(static_cast<size_t>(n) * n);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) cols[static_cast<size_t>(j) * n + i] = a[i * n + j];
  }
  for (int sweep = 0; sweep < kMaxSweeps; ++sweep) {
    bool rotated = false;
    for (int p = 0; p < n; ++p) {
      for (int q = p + 1; q < n; ++q) rotated |= Rotate(&cols, n, p, q);
    }
    if (!rotated) break;
  }
  std::vector<double> sigma(n);
  for (int j = 0; j < n; ++j) {
    double s = 0.0;
    for (int r = 0; r < n; ++r) s += cols[static_cast<size_t>(j) * n + r] * cols[j * n + r];
    sigma[j] = std::sqrt(s);
  }
  std::sort(sigma.begin(), sigma.end(), [](double x, double y) { return x > y; });
  return sigma;
}

double SpectralGap(const std::vector<double>& w, int n) {
  if (n <= 1) return 1.0;
  std::vector<double> off(w);  // W - J/n
  for (double& v : off) v -= 1.0 / n;
  const std::vector<double> sigma = SingularValues(off, n);
  return 1.0 - sigma[0];
}

std::vector<double> DenseMatrix(const Graph& graph, int64_t step) {
  const int n = graph.size();
  std::vector<double> w(static_cast<size_t>(n) * n, 0.0);
  MixingWeights m;
  for (int i = 0; i < n; ++i) {
    if (!graph.Weights(i, step, &m).ok()) continue;
    w[static_cast<size_t>(i) * n + i] = m.self_weight;
    for (const Neighbor& e : m.recv_from) w[static_cast<size_t>(i) * n + e.rank] = e.weight;
  }
  return w;
}

std::vector<double> PeriodProduct(const Graph& graph) {
  const int n = graph.size();
  std::vector<double> product(static_cast<size_t>(n) * n, 0.0);
  for (int i = 0; i < n; ++i) product[static_cast<size_t>(i) * n + i] = 1.0;
  for (int64_t t = 0; t < graph.period(); ++t) {
    product = Multiply(DenseMatrix(graph, t), product, n);
  }
  return product;
}

double SpectralGap(const Graph& graph) {
  if (graph.size() == 0) return 0.0;
  if (graph.time_varying()) return SpectralGap(PeriodProduct(graph), graph.size());
  return SpectralGap(DenseMatrix(graph, 0), graph.size());
}

}  // namespace braid::gossip
