// Neighbour allreduce (one gossip step over a graph of ops/gossip/graph.h) against
// its raw MPI equivalent and against the engine's averaging allreduce of the same
// tensor, in the same run. For each size of the sweep:
//   neighbour, engine  braid_neighbor_allreduce_async out of place + braid_wait, with
//                      this rank's row of W_t (send_to, recv_from, self and
//                      neighbour weights); t advances by one every call, so a
//                      time-varying graph (one_peer_exponential, base) cycles
//                      through its period as it would in training. Each phase
//                      t mod period has a tensor name of its own (as
//                      ops/gossip/decentralized.cc does), so that every W_t keeps
//                      its cached response; --one-name uses one name for all, and
//                      the response goes stale at every call;
//   neighbour, raw     host buffers only: MPI_Irecv from every recv_from rank and
//                      MPI_Isend to every send_to rank on the bench's communicator,
//                      MPI_Waitall, then a host mixing loop in the engine's order of
//                      operations (self term first, then the neighbours in
//                      ascending rank order; float16 and bfloat16 accumulate in
//                      float and round once). Device buffers: n/a;
//   allreduce          braid_allreduce_async, average, in place + braid_wait.
// sent/rank/call: the bytes a rank sends per call: the neighbour allreduce sends
// the tensor once to each send_to rank (mean over the ranks and over one period of
// the graph); a ring allreduce sends 2(n-1)/n of it.
//
// Check (#wrong, once per size before timing, at step t = the size's index): rank
// r holds (r + 1) + (i % 7); the expected mix is computed here in double from every
// neighbour's values and W_t. Raw #wrong counts elements off that reference, engine
// #wrong elements off the reference or (host buffers) off the raw result, both by
// more than the dtype's tolerance; allreduce #wrong checks the average. The bytes
// braid_neighbor_stats counted for the checked call are compared with the graph's.
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench.h"
#include "buffer.h"
#include "ops/gossip/graph.h"
#include "raw_ops.h"
#include "verify.h"

namespace bench {
namespace {

namespace gossip = braid::gossip;

constexpr int kTag = 7301;        // the raw path's messages
constexpr int64_t kBlock = 4096;  // elements per block of the raw mixing loop

// One rank's row of W_t in the C API's form.
struct Step {
  std::vector<int> send_to, recv_from;  // ascending
  double self_weight = 1.0;
  std::vector<double> weights;  // one per recv_from rank
};

Step ToStep(const gossip::MixingWeights& w) {
  Step s;
  s.self_weight = w.self_weight;
  for (const gossip::Neighbor& n : w.send_to) s.send_to.push_back(n.rank);
  for (const gossip::Neighbor& n : w.recv_from) {
    s.recv_from.push_back(n.rank);
    s.weights.push_back(n.weight);
  }
  return s;
}

// This rank's W_t for every t of one period, and what the graph sends.
class Schedule {
 public:
  Schedule(const std::string& name, int ranks, int rank) {
    gossip::GraphKind kind;
    gossip::Graph graph;
    braid::Status st = gossip::ParseGraphKind(name, &kind);
    if (st.ok()) st = gossip::Graph::Make(kind, ranks, &graph);
    if (!st.ok()) throw std::runtime_error("graph " + name + ": " + st.message());
    int64_t sends = 0;
    for (int64_t t = 0; t < graph.period(); ++t) {
      for (int r = 0; r < ranks; ++r) {
        gossip::MixingWeights w;
        st = graph.Weights(r, t, &w);
        if (!st.ok()) throw std::runtime_error("graph " + name + ": " + st.message());
        sends += static_cast<int64_t>(w.send_to.size());
        if (r == rank) steps_.push_back(ToStep(w));
      }
    }
    mean_sends_ = static_cast<double>(sends) / static_cast<double>(ranks * graph.period());
    description_ = graph.description() + ", period " + std::to_string(graph.period());
  }

  const Step& At(int64_t t) const { return steps_[static_cast<size_t>(t) % steps_.size()]; }
  int64_t period() const { return static_cast<int64_t>(steps_.size()); }
  // Messages a rank sends per call: mean over the ranks and the period.
  double mean_sends() const { return mean_sends_; }
  size_t max_recvs() const {
    size_t m = 0;
    for (const Step& s : steps_) m = std::max(m, s.recv_from.size());
    return m;
  }
  const std::string& description() const { return description_; }

 private:
  std::vector<Step> steps_;
  double mean_sends_ = 0;
  std::string description_;
};

// out = self_weight * self + sum over k of weights[k] * in[k], accumulated in Acc
// (float for float32 and the 16-bit types, double for float64), block by block so
// that the accumulator stays in cache.
template <class C, class Acc>
void MixBlocks(const Step& s, const void* self, const std::vector<const char*>& in, void* out,
               int64_t count) {
  using T = typename C::Storage;
  const T* x = static_cast<const T*>(self);
  T* y = static_cast<T*>(out);
  alignas(64) Acc acc[kBlock];
  const Acc self_weight = static_cast<Acc>(s.self_weight);
  for (int64_t offset = 0; offset < count; offset += kBlock) {
    const int64_t n = std::min(kBlock, count - offset);
    for (int64_t j = 0; j < n; ++j)
      acc[j] = self_weight * static_cast<Acc>(C::Decode(x[offset + j]));
    for (size_t k = 0; k < in.size(); ++k) {
      const Acc w = static_cast<Acc>(s.weights[k]);
      const T* p = reinterpret_cast<const T*>(in[k]) + offset;
      for (int64_t j = 0; j < n; ++j) acc[j] = acc[j] + w * static_cast<Acc>(C::Decode(p[j]));
    }
    for (int64_t j = 0; j < n; ++j) y[offset + j] = C::Encode(acc[j]);
  }
}

void HostMix(int dtype, const Step& s, const void* self, const std::vector<const char*>& in,
             void* out, int64_t count) {
  WithCodec(dtype, [&](auto codec) {
    using C = decltype(codec);
    if (dtype == BRAID_FLOAT64) return MixBlocks<C, double>(s, self, in, out, count);
    MixBlocks<C, float>(s, self, in, out, count);
  });
}

// The number of i < count where got[i] is off want(i), or (other not null) off
// other[i], by more than the dtype's relative tolerance.
template <class F>
int64_t CountOff(const DType& d, const void* got, const void* other, int64_t count, F want) {
  int64_t wrong = 0;
  WithCodec(d.braid, [&](auto codec) {
    using C = decltype(codec);
    const auto* g = static_cast<const typename C::Storage*>(got);
    const auto* o = static_cast<const typename C::Storage*>(other);
    for (int64_t i = 0; i < count; ++i) {
      const double w = want(i), v = C::Decode(g[i]);
      const double slack = d.tolerance * std::fmax(1.0, std::fabs(w));
      bool off = !(std::fabs(v - w) <= slack);
      if (o != nullptr && !(std::fabs(v - C::Decode(o[i])) <= slack)) off = true;
      wrong += off ? 1 : 0;
    }
  });
  return wrong;
}

int64_t NeighborSentTotal(int ranks) {
  std::vector<int64_t> sent(static_cast<size_t>(ranks), 0);
  if (braid_neighbor_stats(sent.data(), ranks) != BRAID_OK) return -1;
  int64_t total = 0;
  for (int64_t b : sent) total += b;
  return total;
}

class NeighborSweep {
 public:
  NeighborSweep(const Context& c, int64_t max_count)
      : c_(c),
        dtype_(*c.options.dtype),
        schedule_(c.options.graph, c.ranks, c.rank),
        host_(c.memory.on_host()),
        max_bytes_(static_cast<size_t>(max_count) * dtype_.size),
        input_(c.memory, max_bytes_),
        engine_out_(c.memory, max_bytes_),
        allreduce_(c.memory, max_bytes_),
        raw_out_(host_ ? max_bytes_ : 0),
        recv_(host_ ? schedule_.max_recvs() * max_bytes_ : 0) {}

  const Schedule& schedule() const { return schedule_; }
  Row Measure(int64_t count);

 private:
  void Engine(const std::string& name, int64_t count, int64_t t);
  void Raw(int64_t count, int64_t t);
  double Expected(const Step& s, int64_t i) const;
  int64_t CheckNeighbor(const std::string& name, int64_t count, int64_t* raw_wrong);
  int64_t CheckAllreduce(const std::string& name, int64_t count);
  void CheckStats(int64_t sent, int64_t count, int64_t t) const;

  const Context& c_;
  const DType& dtype_;
  Schedule schedule_;
  bool host_;
  size_t max_bytes_;
  Buffer input_, engine_out_, allreduce_;
  std::vector<char> raw_out_, recv_;  // host only
  int64_t checks_ = 0;                // sizes checked so far: the step of the next check
};

void NeighborSweep::Engine(const std::string& base, int64_t count, int64_t t) {
  const Step& s = schedule_.At(t);
  const bool one = c_.options.one_name || schedule_.period() == 1;
  const std::string name = one ? base : base + "/phase" + std::to_string(t % schedule_.period());
  const Placement where = Where(c_);
  braid_tensor_t tensor{};
  int64_t shape[1] = {count};
  tensor.data = input_.data();
  tensor.dtype = dtype_.braid;
  tensor.ndim = 1;
  tensor.shape = shape;
  tensor.device = where.device;
  tensor.stream = where.stream;
  braid_handle_t handle = nullptr;
  const int rc = braid_neighbor_allreduce_async(
      name.c_str(), &tensor, engine_out_.data(), s.send_to.data(),
      static_cast<int>(s.send_to.size()), s.recv_from.data(), static_cast<int>(s.recv_from.size()),
      s.self_weight, s.weights.data(), &handle);
  if (rc != BRAID_OK) EngineFailure(rc, "braid_neighbor_allreduce_async", name, nullptr);
  WaitAndFree(handle, name);
  c_.memory.Synchronize();
}

void NeighborSweep::Raw(int64_t count, int64_t t) {
  const Step& s = schedule_.At(t);
  if (count > INT_MAX) throw std::runtime_error("raw neighbour: count exceeds an MPI int");
  const int n = static_cast<int>(count);
  const size_t bytes = static_cast<size_t>(count) * dtype_.size;
  const MPI_Datatype type = MpiType(dtype_.braid);
  std::vector<MPI_Request> requests(s.recv_from.size() + s.send_to.size());
  std::vector<const char*> in(s.recv_from.size());
  for (size_t k = 0; k < s.recv_from.size(); ++k) {
    char* slot = recv_.data() + k * bytes;
    in[k] = slot;
    MPI_Irecv(slot, n, type, s.recv_from[k], kTag, c_.comm, &requests[k]);
  }
  for (size_t k = 0; k < s.send_to.size(); ++k) {
    MPI_Isend(input_.data(), n, type, s.send_to[k], kTag, c_.comm,
              &requests[s.recv_from.size() + k]);
  }
  MPI_Waitall(static_cast<int>(requests.size()), requests.data(), MPI_STATUSES_IGNORE);
  HostMix(dtype_.braid, s, input_.data(), in, raw_out_.data(), count);
}

double NeighborSweep::Expected(const Step& s, int64_t i) const {
  double want = s.self_weight * SenderValue(c_.rank, i);
  for (size_t k = 0; k < s.recv_from.size(); ++k)
    want += s.weights[k] * SenderValue(s.recv_from[k], i);
  return want;
}

// One engine call and (host) one raw call at step checks_, checked; returns the
// engine's #wrong summed over ranks and sets *raw_wrong.
int64_t NeighborSweep::CheckNeighbor(const std::string& name, int64_t count, int64_t* raw_wrong) {
  const int64_t t = checks_++;
  const Step& s = schedule_.At(t);
  Fill(c_.memory, dtype_.braid, input_.data(), count,
       [&](int64_t i) { return SenderValue(c_.rank, i); });
  const int64_t sent_before = NeighborSentTotal(c_.ranks);
  Engine(name, count, t);
  CheckStats(NeighborSentTotal(c_.ranks) - sent_before, count, t);
  const auto want = [&](int64_t i) { return Expected(s, i); };
  int64_t raw = 0;
  if (host_) {
    Raw(count, t);
    raw = CountOff(dtype_, raw_out_.data(), nullptr, count, want);
  }
  std::vector<char> copy;
  const void* engine = engine_out_.data();
  if (!host_) {
    copy.resize(static_cast<size_t>(count) * dtype_.size);
    c_.memory.Download(copy.data(), engine, copy.size());
    engine = copy.data();
  }
  const int64_t wrong = CountOff(dtype_, engine, host_ ? raw_out_.data() : nullptr, count, want);
  *raw_wrong = SumOverRanks(c_.comm, raw);
  return SumOverRanks(c_.comm, wrong);
}

// The bytes braid_neighbor_stats counted for one call against the graph's; rank 0
// prints the ranks that differ.
void NeighborSweep::CheckStats(int64_t sent, int64_t count, int64_t t) const {
  const int64_t want = static_cast<int64_t>(schedule_.At(t).send_to.size()) * count *
                       static_cast<int64_t>(dtype_.size);
  const int64_t off = SumOverRanks(c_.comm, sent == want ? 0 : 1);
  if (off != 0 && c_.rank == 0) {
    std::printf("# note: on %lld ranks braid_neighbor_stats differs from the graph's bytes\n",
                static_cast<long long>(off));
  }
}

int64_t NeighborSweep::CheckAllreduce(const std::string& name, int64_t count) {
  const AllreducePattern pattern{BRAID_AVERAGE, c_.ranks, true};
  Fill(c_.memory, dtype_.braid, allreduce_.data(), count,
       [&](int64_t i) { return pattern.Value(c_.rank, i); });
  EngineAllreduce(name, allreduce_.data(), count, dtype_.braid, BRAID_AVERAGE, Where(c_));
  c_.memory.Synchronize();
  return SumOverRanks(c_.comm, CountWrong(c_.memory, dtype_, allreduce_.data(), count,
                                          [&](int64_t i) { return pattern.Expected(i); }));
}

Row NeighborSweep::Measure(int64_t count) {
  const int64_t bytes = count * static_cast<int64_t>(dtype_.size);
  const std::string name = "bench.neighbor." + std::to_string(bytes);
  const std::string allreduce_name = "bench.neighbor.allreduce." + std::to_string(bytes);
  int64_t raw_wrong = 0;
  const int64_t engine_wrong = CheckNeighbor(name, count, &raw_wrong);
  const int64_t allreduce_wrong = CheckAllreduce(allreduce_name, count);

  int64_t engine_step = 0, raw_step = 0;
  const Placement where = Where(c_);
  std::vector<Path> paths;
  if (host_) paths.push_back({"raw neighbour", [&] { Raw(count, raw_step++); }});
  paths.push_back({"engine neighbour", [&] { Engine(name, count, engine_step++); }});
  paths.push_back({"engine allreduce", [&] {
                     EngineAllreduce(allreduce_name, allreduce_.data(), count, dtype_.braid,
                                     BRAID_AVERAGE, where);
                     c_.memory.Synchronize();
                   }});
  const std::vector<Measured> m = MeasurePaths(c_.comm, c_.options, paths);

  Row row;
  row.mode = "neighbor";
  row.collective = "neighbor_allreduce";
  row.bytes = bytes;
  row.count = count;
  row.dtype = dtype_.name;
  row.op = "avg";
  row.graph = c_.options.graph;
  row.has_raw = host_;
  row.neighbor_sent = schedule_.mean_sends() * static_cast<double>(bytes);
  row.allreduce_sent =
      c_.ranks > 1 ? 2.0 * (c_.ranks - 1) / c_.ranks * static_cast<double>(bytes) : 0.0;
  const double neighbor_factor = schedule_.mean_sends();
  const size_t e = host_ ? 1 : 0;
  row.engine = MakeStats(bytes, m[e], neighbor_factor, engine_wrong);
  if (host_) {
    row.raw = MakeStats(bytes, m[0], neighbor_factor, raw_wrong);
    row.ratio = Ratio(row.engine, row.raw);
  }
  row.allreduce =
      MakeStats(bytes, m[e + 1], BusFactor(Collective::kAllreduce, c_.ranks), allreduce_wrong);
  return row;
}

}  // namespace

void RunNeighborSweep(const Context& c) {
  const std::vector<int64_t> counts = SweepCounts(c.options, 1);
  NeighborSweep sweep(c, counts.back());
  const Schedule& s = sweep.schedule();
  char sends[64];
  std::snprintf(sends, sizeof(sends), ", %.3g messages sent per rank per call", s.mean_sends());
  const char* names = s.period() == 1      ? ""
                      : c.options.one_name ? ", one tensor name for every W_t"
                                           : ", one tensor name per phase";
  c.report->PrintNeighborHeader(s.description() + sends + names);
  for (int64_t count : counts) c.report->AddNeighborRow(sweep.Measure(count));
  c.report->PrintNeighborSummary();
}

}  // namespace bench
