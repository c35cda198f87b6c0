// Filling buffers with values whose collective result is exact, and counting the
// elements of a result that differ from what is expected (the #wrong column).
//
// Allreduce: rank r holds (r + 1) + (i % 7), small integers exact in every dtype,
// so sum, average, min and max have closed forms. For product, one rank (i % n)
// holds 1 + (i % 3) and the others 1, so the product never overflows.
// Allgather and broadcast: the sending rank r holds (r + 1) + (i % 7).
#ifndef BRAID_BENCH_VERIFY_H_
#define BRAID_BENCH_VERIFY_H_

#include <mpi.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "dtype.h"
#include "memory.h"

namespace bench {

// buf[i] = value(i) for i < count.
template <class F>
void Fill(int dtype, void* buf, int64_t count, F value) {
  WithCodec(dtype, [&](auto codec) {
    using C = decltype(codec);
    auto* p = static_cast<typename C::Storage*>(buf);
    for (int64_t i = 0; i < count; ++i) p[i] = C::Encode(value(i));
  });
}

// The number of i < count where buf[i] differs from expected(i) by more than the
// dtype's relative tolerance.
template <class F>
int64_t CountWrong(const DType& dtype, const void* buf, int64_t count, F expected) {
  int64_t wrong = 0;
  WithCodec(dtype.braid, [&](auto codec) {
    using C = decltype(codec);
    const auto* p = static_cast<const typename C::Storage*>(buf);
    for (int64_t i = 0; i < count; ++i) {
      const double want = expected(i);
      const double got = C::Decode(p[i]);
      const double slack = dtype.tolerance * std::fmax(1.0, std::fabs(want));
      if (!(std::fabs(got - want) <= slack)) ++wrong;
    }
  });
  return wrong;
}

// The same on a buffer in `memory`: in place on the host, through a host copy on a
// device.
template <class F>
void Fill(Memory& memory, int dtype, void* buf, int64_t count, F value) {
  if (memory.on_host()) return Fill(dtype, buf, count, value);
  size_t size = 0;
  WithCodec(dtype, [&](auto codec) { size = sizeof(typename decltype(codec)::Storage); });
  std::vector<char> host(static_cast<size_t>(count) * size);
  Fill(dtype, host.data(), count, value);
  memory.Upload(buf, host.data(), host.size());
}

template <class F>
int64_t CountWrong(Memory& memory, const DType& dtype, const void* buf, int64_t count, F expected) {
  if (memory.on_host()) return CountWrong(dtype, buf, count, expected);
  std::vector<char> host(static_cast<size_t>(count) * dtype.size);
  memory.Download(host.data(), buf, host.size());
  return CountWrong(dtype, host.data(), count, expected);
}

inline int64_t SumOverRanks(MPI_Comm comm, int64_t local) {
  int64_t global = 0;
  MPI_Allreduce(&local, &global, 1, MPI_INT64_T, MPI_SUM, comm);
  return global;
}

inline double SenderValue(int rank, int64_t i) {
  return (rank + 1) + static_cast<double>(i % 7);
}

struct AllreducePattern {
  int op;
  int ranks;
  bool floating;

  double Value(int rank, int64_t i) const {
    if (op == BRAID_PRODUCT) return rank == i % ranks ? 1 + static_cast<double>(i % 3) : 1;
    return SenderValue(rank, i);
  }

  double Expected(int64_t i) const {
    const double k = static_cast<double>(i % 7);
    const double sum = ranks * (ranks + 1) / 2.0 + ranks * k;
    switch (op) {
      case BRAID_AVERAGE:
        return floating ? sum / ranks : std::trunc(sum / ranks);
      case BRAID_MIN:
        return 1 + k;
      case BRAID_MAX:
        return ranks + k;
      case BRAID_PRODUCT:
        return 1 + static_cast<double>(i % 3);
      default:
        return sum;
    }
  }

  // Values for the timed loops: the identity of sum and product, so that
  // repeated in-place reductions never overflow; min, max and average are
  // already stable under repetition.
  double TimingValue(int rank, int64_t i) const {
    if (op == BRAID_SUM) return 0;
    if (op == BRAID_PRODUCT) return 1;
    return Value(rank, i);
  }
};

}  // namespace bench

#endif  // BRAID_BENCH_VERIFY_H_
