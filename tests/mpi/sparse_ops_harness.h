// The C API side of the sparse-op suites (tests/mpi/test_c_api_sparse_ops*.cc): a
// small "network" of float64 tensors registered with an op, its gradients as a
// function of (rank, step, tensor, index), the op's state read back, and checks
// against the reference (sparse_ops_reference.h).
#pragma once

#include <mpi.h>

#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "braid/braid.h"
#include "tests/mpi/c_api_test_util.h"
#include "tests/mpi/sparse_ops_reference.h"

namespace soh {

// Owns a braid_sparse_op_t.
struct Op {
  braid_sparse_op_t op = nullptr;
  Op() = default;
  Op(const Op&) = delete;
  Op& operator=(const Op&) = delete;
  ~Op() { braid_sparse_op_free(op); }
};

inline int Create(sor::Method method, const std::string& name, const braid_sparse_options_t& o,
                  Op* op) {
  switch (method) {
    case sor::kMdsgd:
      return braid_mdsgd_create(name.c_str(), &o, &op->op);
    case sor::kGmc:
      return braid_gmc_create(name.c_str(), &o, &op->op);
    default:
      return braid_dgc_create(name.c_str(), &o, &op->op);
  }
}

// Float64 host tensors in registration order, and where each sits in the op's flat
// layout (the sparse tensors first, then the dense ones).
struct Net {
  std::vector<std::vector<double>> params, grads;
  std::vector<bool> dense;
  std::vector<int64_t> sizes, offset;
  int64_t total = 0;

  explicit Net(std::vector<int64_t> tensor_sizes, std::vector<bool> dense_flags = {})
      : dense(std::move(dense_flags)), sizes(std::move(tensor_sizes)) {
    if (dense.empty()) dense.assign(sizes.size(), false);
    offset.assign(sizes.size(), 0);
    for (int pass = 0; pass < 2; ++pass) {
      for (size_t j = 0; j < sizes.size(); ++j) {
        if (dense[j] != (pass == 1)) continue;
        offset[j] = total;
        total += sizes[j];
      }
    }
    for (size_t j = 0; j < sizes.size(); ++j) {
      params.emplace_back(static_cast<size_t>(sizes[j]));
      grads.emplace_back(static_cast<size_t>(sizes[j]), 0.0);
      for (int64_t i = 0; i < sizes[j]; ++i) params[j][i] = 0.5 * std::cos(0.3 * i + j);
    }
  }

  // The reference's options: sizes and dense flags in layout order.
  sor::SimOptions Layout(sor::SimOptions o) const {
    o.sizes.clear();
    o.dense.clear();
    for (int pass = 0; pass < 2; ++pass) {
      for (size_t j = 0; j < sizes.size(); ++j) {
        if (dense[j] != (pass == 1)) continue;
        o.sizes.push_back(sizes[j]);
        o.dense.push_back(dense[j]);
      }
    }
    return o;
  }

  std::vector<double> FlatGrad(int r, int t) const {
    std::vector<double> flat(static_cast<size_t>(total));
    for (size_t j = 0; j < sizes.size(); ++j)
      for (int64_t i = 0; i < sizes[j]; ++i) flat[offset[j] + i] = sor::Grad(r, t, i, int(j));
    return flat;
  }
  std::vector<std::vector<double>> AllGrads(int ranks, int t) const {
    std::vector<std::vector<double>> all;
    for (int r = 0; r < ranks; ++r) all.push_back(FlatGrad(r, t));
    return all;
  }
  void SetGrads(int rank, int t, bool zero = false) {
    for (size_t j = 0; j < sizes.size(); ++j)
      for (int64_t i = 0; i < sizes[j]; ++i)
        grads[j][i] = zero ? 0.0 : sor::Grad(rank, t, i, int(j));
  }
  std::vector<double> FlatParams() const {
    std::vector<double> flat(static_cast<size_t>(total));
    for (size_t j = 0; j < sizes.size(); ++j)
      for (int64_t i = 0; i < sizes[j]; ++i) flat[offset[j] + i] = params[j][i];
    return flat;
  }
  void SetFlatParams(const std::vector<double>& flat) {
    for (size_t j = 0; j < sizes.size(); ++j)
      for (int64_t i = 0; i < sizes[j]; ++i) params[j][i] = flat[offset[j] + i];
  }

  int Register(braid_sparse_op_t op) {
    std::vector<braid_tensor_t> p, g;
    std::vector<int> flags;
    for (size_t j = 0; j < sizes.size(); ++j) {
      p.push_back({params[j].data(), BRAID_FLOAT64, 1, &sizes[j], BRAID_DEVICE_CPU, nullptr});
      g.push_back({grads[j].data(), BRAID_FLOAT64, 1, &sizes[j], BRAID_DEVICE_CPU, nullptr});
      flags.push_back(dense[j] ? 1 : 0);
    }
    return braid_sparse_op_set_buffers(op, p.data(), g.data(), static_cast<int>(sizes.size()),
                                       flags.data());
  }
};

// A copy of one state buffer.
inline std::vector<double> State(braid_sparse_op_t op, const char* name) {
  void* data = nullptr;
  int64_t count = 0;
  if (braid_sparse_op_state(op, name, &data, &count) != BRAID_OK) return {};
  const double* d = static_cast<const double*>(data);
  return std::vector<double>(d, d + count);
}

inline void WriteState(braid_sparse_op_t op, const char* name, const std::vector<double>& v) {
  void* data = nullptr;
  int64_t count = 0;
  ASSERT_EQ(braid_sparse_op_state(op, name, &data, &count), BRAID_OK) << braid_last_error();
  ASSERT_EQ(count, static_cast<int64_t>(v.size()));
  std::memcpy(data, v.data(), v.size() * sizeof(double));
}

inline ::testing::AssertionResult Near(const std::vector<double>& got,
                                       const std::vector<double>& want, const std::string& what,
                                       double tol = 1e-11) {
  if (got.size() != want.size()) {
    return ::testing::AssertionFailure()
           << what << ": " << got.size() << " elements, want " << want.size();
  }
  std::ostringstream s;
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::fabs(got[i] - want[i]) <= tol * (1.0 + std::fabs(want[i]))) continue;
    if (bad++ < 4) s << " [" << i << "] got " << got[i] << " want " << want[i] << ";";
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << " (rank " << ctu::MyWorldRank() << "): " << bad
                                       << " of " << got.size() << " differ:" << s.str();
}

// Whether every rank holds the same bits.
inline bool SameOnEveryRank(const std::vector<double>& v) {
  uint64_t h = 1469598103934665603ull;
  const auto* bytes = reinterpret_cast<const unsigned char*>(v.data());
  for (size_t i = 0; i < v.size() * sizeof(double); ++i) h = (h ^ bytes[i]) * 1099511628211ull;
  uint64_t lo = h, hi = h;
  MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
  return lo == hi;
}

// Every rank's copy of `v` (MPI allgather), rank by rank.
inline std::vector<std::vector<double>> Gather(const std::vector<double>& v) {
  const int n = ctu::WorldSize();
  std::vector<double> all(v.size() * static_cast<size_t>(n));
  MPI_Allgather(v.data(), static_cast<int>(v.size()), MPI_DOUBLE, all.data(),
                static_cast<int>(v.size()), MPI_DOUBLE, MPI_COMM_WORLD);
  std::vector<std::vector<double>> out;
  for (int r = 0; r < n; ++r)
    out.emplace_back(all.begin() + r * v.size(), all.begin() + (r + 1) * v.size());
  return out;
}

// Positions where the op's memory is exactly zero but the reference's z is not:
// what the op sent.
inline std::vector<int64_t> SentPositions(const std::vector<double>& memory,
                                          const std::vector<double>& z) {
  std::vector<int64_t> out;
  for (size_t i = 0; i < memory.size(); ++i)
    if (memory[i] == 0.0 && z[i] != 0.0) out.push_back(static_cast<int64_t>(i));
  return out;
}

}  // namespace soh
