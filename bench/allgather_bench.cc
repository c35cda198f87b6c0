// Allgather sweep: braid_allgather_async (braid allocates and owns the output)
// against the raw path's allgather from the same input into a preallocated output.
// As in nccl-tests, a row's size is the total output bytes and its count the
// elements each rank contributes. Freeing braid's output is part of the engine's
// time.
#include <string>

#include "bench.h"
#include "buffer.h"
#include "verify.h"

namespace bench {
namespace {

class AllgatherSweep {
 public:
  AllgatherSweep(const Context& c, int64_t max_count)
      : c_(c),
        dtype_(*c.options.dtype),
        input_(c.memory, static_cast<size_t>(max_count) * dtype_.size),
        output_(c.memory, static_cast<size_t>(max_count) * c.ranks * dtype_.size) {}

  Row Measure(int64_t count);

 private:
  // Element j of the gathered output (in c_.memory) came from rank j / count.
  int64_t CountWrong(const void* output, int64_t total, int64_t count) const {
    if (total != count * c_.ranks) return count * c_.ranks;  // wrong shape: all wrong
    return bench::CountWrong(c_.memory, dtype_, output, total,
                             [&](int64_t j) { return SenderValue(j / count, j % count); });
  }
  void FillInput(int64_t count) const {
    Fill(c_.memory, dtype_.braid, input_.data(), count,
         [&](int64_t i) { return SenderValue(c_.rank, i); });
  }
  int64_t CheckEngine(const std::string& name, int64_t count) const;
  int64_t CheckRaw(int64_t count) const;

  const Context& c_;
  const DType& dtype_;
  Buffer input_;
  Buffer output_;
};

int64_t AllgatherSweep::CheckEngine(const std::string& name, int64_t count) const {
  FillInput(count);
  int64_t wrong = count * c_.ranks;
  EngineAllgather(name, input_.data(), count, dtype_.braid, Where(c_),
                  [&](const void* out, int64_t total) {
                    c_.memory.Synchronize();
                    wrong = CountWrong(out, total, count);
                  });
  return SumOverRanks(c_.comm, wrong);
}

int64_t AllgatherSweep::CheckRaw(int64_t count) const {
  FillInput(count);
  Fill(c_.memory, dtype_.braid, output_.data(), count * c_.ranks, [](int64_t) { return 0.0; });
  c_.raw.Allgather(input_.data(), output_.data(), count);
  return SumOverRanks(c_.comm, CountWrong(output_.data(), count * c_.ranks, count));
}

Row AllgatherSweep::Measure(int64_t count) {
  const int64_t bytes = count * c_.ranks * static_cast<int64_t>(dtype_.size);
  const std::string name = "bench.allgather." + std::to_string(bytes);
  const int64_t engine_wrong = CheckEngine(name, count);
  const int64_t raw_wrong = CheckRaw(count);

  FillInput(count);
  const Placement where = Where(c_);
  const std::vector<Measured> m = MeasureSweep(
      c_, [&](RawPath& path) { path.Allgather(input_.data(), output_.data(), count); },
      [&] { EngineAllgather(name, input_.data(), count, dtype_.braid, where); });

  const double factor = BusFactor(Collective::kAllgather, c_.ranks);
  Row row;
  row.mode = "sweep";
  row.collective = "allgather";
  row.bytes = bytes;
  row.count = count;
  row.dtype = dtype_.name;
  row.op = "none";
  SetSweepStats(&row, m, factor, raw_wrong, engine_wrong);
  return row;
}

}  // namespace

void RunAllgatherSweep(const Context& c) {
  RunSweep<AllgatherSweep>(c, c.ranks);
}

}  // namespace bench
