// Fusion: K allreduces of S bytes each, all submitted with braid_allreduce_async
// before any braid_wait, so the engine can fuse them. Compared with K separate raw
// allreduces (raw_path.h) on the same K slices and with one raw allreduce of K*S
// bytes (the design's target: at most 1.2x the latter). The K tensors are
// consecutive slices of one buffer (host or device memory); names are
// "bench.fusion.<k>". With the staged raw path, the one host MPI_Allreduce of K*S
// bytes without the copies is timed as well.
#include <cstdio>
#include <string>

#include "braid/braid.h"

#include "bench.h"
#include "buffer.h"
#include "verify.h"

namespace bench {
namespace {

class FusionCase {
 public:
  explicit FusionCase(const Context& c)
      : c_(c),
        dtype_(*c.options.dtype),
        tensors_(c.options.fusion_count),
        count_(c.options.fusion_bytes / static_cast<int64_t>(dtype_.size)),
        pattern_{c.options.op, c.ranks, dtype_.floating},
        buffer_(c.memory, static_cast<size_t>(count_ * tensors_) * dtype_.size) {
    for (int k = 0; k < tensors_; ++k) names_.push_back("bench.fusion." + std::to_string(k));
  }

  Row Measure();

 private:
  char* Slice(int k) const { return buffer_.data() + k * count_ * dtype_.size; }
  int64_t total() const { return count_ * tensors_; }
  int64_t row_tensor_bytes() const { return count_ * static_cast<int64_t>(dtype_.size); }

  // All tensors submitted, then all waited for, then the stream synchronised.
  void Engine() const {
    const Placement where = Where(c_);
    std::vector<braid_handle_t> handles(tensors_);
    for (int k = 0; k < tensors_; ++k) {
      handles[k] = SubmitAllreduce(names_[k], Slice(k), count_, dtype_.braid, c_.options.op, where);
    }
    for (int k = 0; k < tensors_; ++k) WaitAndFree(handles[k], names_[k]);
    c_.memory.Synchronize();
  }
  void RawSeparate() const {
    for (int k = 0; k < tensors_; ++k) c_.raw.Allreduce(Slice(k), count_);
  }
  void RawOne() const { c_.raw.Allreduce(buffer_.data(), total()); }

  // How many collectives (fused groups) one call of K tensors became, on average.
  void PrintGroupsPerCall() const {
    int64_t requests = 0, groups = 0;
    double unused = 0;
    braid_stage_times(BRAID_STAGE_SUBMIT, &requests, &unused);
    braid_stats(BRAID_ALLREDUCE, &groups, nullptr);
    const double calls = static_cast<double>(requests) / tensors_;
    std::printf("# groups per call (rank 0): %.2f\n", calls > 0 ? groups / calls : 0.0);
  }

  // Fills every slice, runs `path` once and counts the wrong elements of all.
  template <class F>
  int64_t Check(F path) const {
    Fill(c_.memory, dtype_.braid, buffer_.data(), total(),
         [&](int64_t i) { return pattern_.Value(c_.rank, i); });
    path();
    const int64_t wrong = CountWrong(c_.memory, dtype_, buffer_.data(), total(),
                                     [&](int64_t i) { return pattern_.Expected(i); });
    return SumOverRanks(c_.comm, wrong);
  }

  const Context& c_;
  const DType& dtype_;
  int tensors_;
  int64_t count_;  // elements per tensor
  AllreducePattern pattern_;
  Buffer buffer_;
  std::vector<std::string> names_;
};

Row FusionCase::Measure() {
  const int64_t engine_wrong = Check([&] { Engine(); });
  const int64_t separate_wrong = Check([&] { RawSeparate(); });
  const int64_t one_wrong = Check([&] { RawOne(); });

  Fill(c_.memory, dtype_.braid, buffer_.data(), total(),
       [&](int64_t i) { return pattern_.TimingValue(c_.rank, i); });
  std::vector<Path> paths = {
      {"raw one", [&] { RawOne(); }},
      {"raw separate", [&] { RawSeparate(); }},
      {"engine", [&] { Engine(); }},
  };
  RawPath* host = c_.raw.host_only();
  if (host != nullptr)
    paths.push_back({"raw one, host only", [&] { host->Allreduce(nullptr, total()); }});
  if (c_.options.stages) braid_reset_stats();
  const std::vector<Measured> m = MeasurePaths(c_.comm, c_.options, paths);
  if (c_.options.stages && c_.rank == 0) {
    PrintStages(std::to_string(tensors_) + " x " + std::to_string(row_tensor_bytes()) + " B");
    PrintGroupsPerCall();
  }

  const int64_t bytes = total() * static_cast<int64_t>(dtype_.size);
  const double factor = BusFactor(Collective::kAllreduce, c_.ranks);
  Row row;
  row.mode = "fusion";
  row.collective = "allreduce";
  row.bytes = bytes;
  row.count = total();
  row.dtype = dtype_.name;
  row.op = OpName(c_.options.op);
  row.tensors = tensors_;
  row.tensor_bytes = count_ * static_cast<int64_t>(dtype_.size);
  row.raw = MakeStats(bytes, m[0], factor, one_wrong);
  row.raw_separate = MakeStats(bytes, m[1], factor, separate_wrong);
  row.engine = MakeStats(bytes, m[2], factor, engine_wrong);
  if (host != nullptr) {
    row.has_raw_host = true;
    row.raw_host = MakeStats(bytes, m[3], factor, 0);
  }
  row.ratio = Ratio(row.engine, row.raw);
  return row;
}

}  // namespace

void RunFusion(const Context& c) {
  FusionCase fusion(c);
  c.report->AddFusionRow(fusion.Measure());
}

}  // namespace bench
