// Allreduce sweep: for each size, braid_allreduce_async in place + braid_wait
// (one tensor name per size, reused by every call so the response cache is warm)
// against the raw path's allreduce (raw_path.h) on the same buffer. The buffer is
// allocated once at the largest size, in host or device memory (--device), and
// reused.
#include <cstdio>
#include <string>

#include "braid/braid.h"

#include "bench.h"
#include "buffer.h"
#include "verify.h"

namespace bench {
namespace {

class AllreduceSweep {
 public:
  explicit AllreduceSweep(const Context& c, int64_t max_count)
      : c_(c),
        dtype_(*c.options.dtype),
        pattern_{c.options.op, c.ranks, dtype_.floating},
        buffer_(c.memory, static_cast<size_t>(max_count) * dtype_.size) {}

  Row Measure(int64_t count);

 private:
  int64_t CountWrong(int64_t count) const {
    return SumOverRanks(c_.comm,
                        bench::CountWrong(c_.memory, dtype_, buffer_.data(), count,
                                          [&](int64_t i) { return pattern_.Expected(i); }));
  }
  void FillValues(int64_t count) const {
    Fill(c_.memory, dtype_.braid, buffer_.data(), count,
         [&](int64_t i) { return pattern_.Value(c_.rank, i); });
  }

  const Context& c_;
  const DType& dtype_;
  AllreducePattern pattern_;
  Buffer buffer_;
};

Row AllreduceSweep::Measure(int64_t count) {
  const Options& o = c_.options;
  const int64_t bytes = count * static_cast<int64_t>(dtype_.size);
  const std::string name = "bench.allreduce." + std::to_string(bytes);
  void* data = buffer_.data();
  const Placement where = Where(c_);
  const auto engine = [&] { EngineAllreduce(name, data, count, dtype_.braid, o.op, where); };
  const auto raw = [&](RawPath& path) { path.Allreduce(data, count); };

  FillValues(count);
  engine();
  c_.memory.Synchronize();
  const int64_t engine_wrong = CountWrong(count);
  FillValues(count);
  raw(c_.raw);
  const int64_t raw_wrong = CountWrong(count);

  Fill(c_.memory, dtype_.braid, data, count,
       [&](int64_t i) { return pattern_.TimingValue(c_.rank, i); });
  if (o.stages) braid_reset_stats();
  const std::vector<Measured> m = MeasureSweep(c_, raw, engine);
  if (o.stages && c_.rank == 0) PrintStages(std::to_string(bytes) + " B");

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
