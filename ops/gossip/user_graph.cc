// Checks of a user-given mixing matrix: gossip preserves the average over the
// ranks only when W is doubly stochastic, so a matrix that is not is refused
// with the first violating entry, row or column named.
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "ops/gossip/topology.h"

namespace braid::gossip {
namespace {

constexpr double kSumTolerance = 1e-12;

std::string Num(double v) {
  std::ostringstream s;
  s.precision(17);
  s << v;
  return s.str();
}

}  // namespace

Status ValidateMixingMatrix(const std::vector<double>& w, int size, const std::string& which) {
  const std::string head = "user mixing matrix " + which + ": ";
  const size_t want = static_cast<size_t>(size) * static_cast<size_t>(size);
  if (w.size() != want) {
    return InvalidArgument(head + "expected " + std::to_string(size) + " x " +
                           std::to_string(size) + " = " + std::to_string(want) +
                           " entries (row-major), got " + std::to_string(w.size()));
  }
  for (int i = 0; i < size; ++i) {
    for (int j = 0; j < size; ++j) {
      const double v = w[static_cast<size_t>(i) * size + j];
      if (!std::isfinite(v) || v < 0.0) {
        return InvalidArgument(head + "entry (" + std::to_string(i) + ", " + std::to_string(j) +
                               ") = " + Num(v) + " is " +
                               (std::isfinite(v) ? "negative" : "not finite") +
                               "; mixing weights must be >= 0");
      }
    }
  }
  for (int i = 0; i < size; ++i) {
    double row = 0.0, column = 0.0;
    for (int j = 0; j < size; ++j) {
      row += w[static_cast<size_t>(i) * size + j];
      column += w[static_cast<size_t>(j) * size + i];
    }
    if (std::fabs(row - 1.0) > kSumTolerance) {
      return InvalidArgument(head + "row " + std::to_string(i) + " sums to " + Num(row) +
                             ", not 1 (within 1e-12): W must be doubly stochastic");
    }
    if (std::fabs(column - 1.0) > kSumTolerance) {
      return InvalidArgument(head + "column " + std::to_string(i) + " sums to " + Num(column) +
                             ", not 1 (within 1e-12): W must be doubly stochastic, or "
                             "mixing does not preserve the average");
    }
  }
  return Status::OK();
}

}  // namespace braid::gossip
