// Allreduce sweep: for each size, braid_allreduce_async in place + braid_wait
// (one tensor name per size, reused by every call so the response cache is warm)
// against MPI_Allreduce(MPI_IN_PLACE) on the same buffer. The buffer is
// allocated once at the largest size and reused.
#include <string>

#include "bench.h"
#include "buffer.h"
#include "engine_ops.h"
#include "raw_ops.h"
#include "verify.h"

namespace bench {
namespace {

class AllreduceSweep {
 public:
  explicit AllreduceSweep(const Context& c, int64_t max_count)
      : c_(c),
        dtype_(*c.options.dtype),
        pattern_{c.options.op, c.ranks, dtype_.floating},
        buffer_(static_cast<size_t>(max_count) * dtype_.size),
        raw_(c.comm, dtype_, c.options.op) {}

  Row Measure(int64_t count);

 private:
  int64_t CountWrong(int64_t count) const {
    return SumOverRanks(c_.comm, bench::CountWrong(dtype_, buffer_.data(), count, [&](int64_t i) {
                          return pattern_.Expected(i);
                        }));
  }
  void FillValues(int64_t count) const {
    Fill(dtype_.braid, buffer_.data(), count,
         [&](int64_t i) { return pattern_.Value(c_.rank, i); });
  }

  const Context& c_;
  const DType& dtype_;
  AllreducePattern pattern_;
  Buffer buffer_;
  RawAllreducer raw_;
};

Row AllreduceSweep::Measure(int64_t count) {
  const Options& o = c_.options;
  const int64_t bytes = count * static_cast<int64_t>(dtype_.size);
  const std::string name = "bench.allreduce." + std::to_string(bytes);
  void* data = buffer_.data();

  FillValues(count);
  EngineAllreduce(name, data, count, dtype_.braid, o.op);
  const int64_t engine_wrong = CountWrong(count);
  FillValues(count);
  raw_.Run(data, count);
  const int64_t raw_wrong = CountWrong(count);

  Fill(dtype_.braid, data, count, [&](int64_t i) { return pattern_.TimingValue(c_.rank, i); });
  const std::vector<Path> paths = {
      {"raw", [&] { raw_.Run(data, count); }},
      {"engine", [&] { EngineAllreduce(name, data, count, dtype_.braid, o.op); }},
  };
  const std::vector<Measured> m = MeasurePaths(c_.comm, o, paths);

  const double factor = BusFactor(Collective::kAllreduce, c_.ranks);
  Row row;
  row.mode = "sweep";
  row.collective = "allreduce";
  row.bytes = bytes;
  row.count = count;
  row.dtype = dtype_.name;
  row.op = OpName(o.op);
  SetSweepStats(&row, m, factor, raw_wrong, engine_wrong);
  return row;
}

}  // namespace

void RunAllreduceSweep(const Context& c) {
  RunSweep<AllreduceSweep>(c, 1);
}

}  // namespace bench
