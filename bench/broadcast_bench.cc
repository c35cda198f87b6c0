// Broadcast sweep: braid_broadcast_async in place from --root against the raw
// path's broadcast on the same buffer. busbw = algbw (nccl-tests).
#include <string>

#include "bench.h"
#include "buffer.h"
#include "verify.h"

namespace bench {
namespace {

class BroadcastSweep {
 public:
  BroadcastSweep(const Context& c, int64_t max_count)
      : c_(c),
        dtype_(*c.options.dtype),
        root_(c.options.root),
        buffer_(c.memory, static_cast<size_t>(max_count) * dtype_.size) {}

  Row Measure(int64_t count);

 private:
  // The root holds its values; the other ranks hold 0, which the result must replace.
  void FillValues(int64_t count) const {
    const bool root = c_.rank == root_;
    Fill(c_.memory, dtype_.braid, buffer_.data(), count,
         [&](int64_t i) { return root ? SenderValue(root_, i) : 0.0; });
  }
  int64_t CountWrong(int64_t count) const {
    return SumOverRanks(c_.comm,
                        bench::CountWrong(c_.memory, dtype_, buffer_.data(), count,
                                          [&](int64_t i) { return SenderValue(root_, i); }));
  }

  const Context& c_;
  const DType& dtype_;
  int root_;
  Buffer buffer_;
};

Row BroadcastSweep::Measure(int64_t count) {
  const int64_t bytes = count * static_cast<int64_t>(dtype_.size);
  const std::string name = "bench.broadcast." + std::to_string(bytes);
  void* data = buffer_.data();
  const Placement where = Where(c_);
  const auto engine = [&] { EngineBroadcast(name, data, count, dtype_.braid, root_, where); };
  const auto raw = [&](RawPath& path) { path.Broadcast(data, count, root_); };

  FillValues(count);
  engine();
  c_.memory.Synchronize();
  const int64_t engine_wrong = CountWrong(count);
  FillValues(count);
  raw(c_.raw);
  const int64_t raw_wrong = CountWrong(count);

  const std::vector<Measured> m = MeasureSweep(c_, raw, engine);

  const double factor = BusFactor(Collective::kBroadcast, c_.ranks);
  Row row;
  row.mode = "sweep";
  row.collective = "broadcast";
  row.bytes = bytes;
  row.count = count;
  row.dtype = dtype_.name;
  row.op = "none";
  row.root = root_;
  SetSweepStats(&row, m, factor, raw_wrong, engine_wrong);
  return row;
}

}  // namespace

void RunBroadcastSweep(const Context& c) {
  RunSweep<BroadcastSweep>(c, 1);
}

}  // namespace bench
