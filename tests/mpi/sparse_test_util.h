// Shared helpers for the sparse collective suites: each rank's (index, row) pairs,
// generated from the rank and a salt so that every rank can compute every other
// rank's, and the dense sum or average written from them in double precision.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <sstream>
#include <vector>

#include "tests/mpi/c_api_test_util.h"

namespace stu {

struct RankPairs {
  std::vector<int64_t> indices;
  std::vector<double> values;  // indices.size() rows of `row` elements
};

// Rank r's pairs: some ranks have none (k = 0 on rank 1); pair 0 addresses row 0,
// pair 1 the last row, pair 2 repeats pair 0 (a duplicate within the rank); the
// rest spread over the rows. Values are small integers, exact in every dtype.
inline RankPairs MakePairs(int rank, int64_t length, int64_t row, int salt) {
  RankPairs p;
  const int64_t k = rank == 1 ? 0 : 3 + (rank * 3 + salt) % 5;
  for (int64_t i = 0; i < k; ++i) {
    int64_t index = (rank * 7 + i * 5 + salt) % length;
    if (i == 0 || i == 2) index = 0;
    if (i == 1) index = length - 1;
    p.indices.push_back(index);
    for (int64_t j = 0; j < row; ++j)
      p.values.push_back(static_cast<double>((rank * 11 + i * 3 + j + salt) % 13) - 6.0);
  }
  return p;
}

// The expected dense tensor (length * row), and for each element a bound on the
// rounding a float `dtype` may add: one rounding per pair added (and per scaling).
struct Expected {
  std::vector<double> dense;
  std::vector<double> tolerance;
};

inline double Epsilon(int dtype) {
  switch (dtype) {
    case BRAID_FLOAT16:
      return std::ldexp(1.0, -10);
    case BRAID_BFLOAT16:
      return std::ldexp(1.0, -7);
    case BRAID_FLOAT32:
      return std::ldexp(1.0, -23);
    default:
      return std::ldexp(1.0, -52);
  }
}

inline Expected Reference(const std::vector<RankPairs>& ranks, int64_t length, int64_t row,
                          bool average, int dtype) {
  Expected e;
  e.dense.assign(static_cast<size_t>(length * row), 0.0);
  std::vector<double> magnitude(e.dense.size(), 0.0), adds(e.dense.size(), 0.0);
  const double scale = average ? 1.0 / static_cast<double>(ranks.size()) : 1.0;
  for (const RankPairs& p : ranks) {
    for (size_t i = 0; i < p.indices.size(); ++i) {
      for (int64_t j = 0; j < row; ++j) {
        const size_t at = static_cast<size_t>(p.indices[i] * row + j);
        const double v = scale * p.values[i * static_cast<size_t>(row) + static_cast<size_t>(j)];
        e.dense[at] += v;
        magnitude[at] += std::fabs(v);
        adds[at] += 2;
      }
    }
  }
  for (size_t i = 0; i < e.dense.size(); ++i)
    e.tolerance.push_back(adds[i] * Epsilon(dtype) * magnitude[i]);
  return e;
}

inline ::testing::AssertionResult Matches(int dtype, const void* data, const Expected& e) {
  int64_t bad = 0;
  std::ostringstream s;
  for (size_t i = 0; i < e.dense.size(); ++i) {
    const double got = ctu::LoadElem(dtype, data, static_cast<int64_t>(i));
    if (std::fabs(got - e.dense[i]) <= e.tolerance[i]) continue;
    if (bad++ < 5) s << " [" << i << "] got " << got << " want " << e.dense[i] << ";";
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << bad << " of " << e.dense.size() << " " << ctu::DtypeName(dtype)
         << " elements differ (rank " << ctu::MyWorldRank() << "):" << s.str();
}

// Every rank's pairs for one case.
inline std::vector<RankPairs> AllPairs(int size, int64_t length, int64_t row, int salt) {
  std::vector<RankPairs> all;
  for (int r = 0; r < size; ++r) all.push_back(MakePairs(r, length, row, salt));
  return all;
}

// Host tensors holding one rank's pairs.
struct PairTensors {
  PairTensors(const RankPairs& p, int value_dtype, int index_dtype, int64_t row, bool flat,
              int device = BRAID_DEVICE_CPU)
      : indices(index_dtype, {static_cast<int64_t>(p.indices.size())}, device),
        values(value_dtype,
               flat ? std::vector<int64_t>{static_cast<int64_t>(p.indices.size())}
                    : std::vector<int64_t>{static_cast<int64_t>(p.indices.size()), row},
               device) {
    for (size_t i = 0; i < p.indices.size(); ++i)
      indices.Set(static_cast<int64_t>(i), static_cast<double>(p.indices[i]));
    for (size_t i = 0; i < p.values.size(); ++i) values.Set(static_cast<int64_t>(i), p.values[i]);
  }
  ctu::Tensor indices;
  ctu::Tensor values;
};

}  // namespace stu
