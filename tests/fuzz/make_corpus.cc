// Writes the seed corpora of the fuzz targets: control messages as the controller
// sends them (encoded by core/wire.cc itself) and environments built from the
// registry's own defaults and bounds. Run once, and again when the formats change:
//   make_corpus <dir>   (writes <dir>/wire/* and <dir>/config/*)
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/wire.h"

namespace {

void Write(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  if (!out) std::fprintf(stderr, "make_corpus: cannot write %s\n", path.c_str());
}

braid::RequestMeta Meta(const std::string& name, braid::Collective c, braid::DataType t,
                        braid::ReduceOp op, std::vector<int64_t> shape) {
  braid::RequestMeta m;
  m.name = name;
  m.collective = c;
  m.dtype = t;
  m.op = op;
  m.shape = std::move(shape);
  return m;
}

std::vector<braid::RequestMeta> ReadyList() {
  using braid::Collective;
  using braid::DataType;
  using braid::ReduceOp;
  auto avg = Meta("layer1.weight.grad", Collective::kAllreduce, DataType::kFloat32,
                  ReduceOp::kAverage, {64, 3, 3, 3});
  avg.postscale = 0.5;
  auto gather =
      Meta("topk.indices", Collective::kAllgather, DataType::kInt64, ReduceOp::kSum, {17, 2});
  auto bcast = Meta("params.0", Collective::kBroadcast, DataType::kBFloat16, ReduceOp::kSum, {5});
  bcast.root = 1;
  bcast.device = 0;
  auto sparse = Meta("emb.grad", Collective::kSparseAllreduce, DataType::kFloat16,
                     ReduceOp::kAverage, {1000, 16});
  sparse.pairs = 37;
  sparse.index_dtype = DataType::kInt64;
  sparse.dense_fallback = false;
  auto sparse_gather =
      Meta("topk.pairs", Collective::kSparseAllgather, DataType::kFloat32, ReduceOp::kSum, {64});
  sparse_gather.pairs = 5;
  auto mix = Meta("gossip.x/phase1", Collective::kNeighborAllreduce, DataType::kFloat32,
                  ReduceOp::kSum, {4096});
  mix.send_to = {1, 3};
  mix.recv_from = {3};
  auto exchange =
      Meta("halo", Collective::kNeighborExchange, DataType::kInt32, ReduceOp::kSum, {2, 8});
  exchange.recv_from = {0, 2};
  return {avg,
          gather,
          bcast,
          sparse,
          sparse_gather,
          mix,
          exchange,
          Meta("barrier.0", Collective::kBarrier, DataType::kUInt8, ReduceOp::kSum, {}),
          Meta(braid::kJoinName, Collective::kJoin, DataType::kUInt8, ReduceOp::kSum, {})};
}

void WriteWire(const std::string& dir) {
  std::vector<braid::RequestMeta> ready = ReadyList();
  Write(dir + "/requests_empty", braid::EncodeRequests({}));
  Write(dir + "/requests_one", braid::EncodeRequests({ready[0]}));
  Write(dir + "/requests_mixed", braid::EncodeRequests(ready));
  std::vector<braid::Response> responses;
  for (const auto& m : ready) {
    braid::Response r;
    r.meta = m;
    if (m.collective == braid::Collective::kAllgather) r.first_dims = {17, 0, 4};
    // Four ranks' lists, each as count, send_to, count, recv_from: rank 0 sends
    // to 1 and 3 and receives from 3; ranks 1 and 3 send to 0 and receive from 0.
    if (braid::IsNeighbor(m.collective)) r.graph = {2, 1, 3, 1, 3, 1, 0, 1, 0, 0, 0, 1, 0, 1, 0};
    responses.push_back(r);
  }
  braid::Response mismatch;
  mismatch.meta = ready[0];
  mismatch.error_code = braid::StatusCode::kMismatch;
  mismatch.error = "Mismatched shapes for 'layer1.weight.grad': rank 1 has [64, 3, 3]";
  responses.push_back(mismatch);
  Write(dir + "/responses_empty", braid::EncodeResponses({}));
  Write(dir + "/responses_mixed", braid::EncodeResponses(responses));
  Write(dir + "/responses_error", braid::EncodeResponses({mismatch}));
  // Regression: a status code that no StatusCode names must not decode.
  braid::Response unknown_code = mismatch;
  unknown_code.error_code = static_cast<braid::StatusCode>(0x00fffa03);
  Write(dir + "/regression_unknown_status_code", braid::EncodeResponses({unknown_code}));
}

// One file per variable with its default, one with every default, and the two
// bounds of each numeric range.
void WriteConfig(const std::string& dir) {
  std::string all;
  for (const braid::ConfigVarInfo& v : braid::DescribeConfigVars()) {
    std::string line = v.name + "=" + v.default_value + "\n";
    all += line;
    Write(dir + "/default_" + v.name, line);
    size_t comma = v.accepted.find(", ");
    if (v.accepted.front() == '[' && comma != std::string::npos) {
      Write(dir + "/low_" + v.name, v.name + "=" + v.accepted.substr(1, comma - 1) + "\n");
      std::string hi = v.accepted.substr(comma + 2, v.accepted.size() - comma - 3);
      Write(dir + "/high_" + v.name, v.name + "=" + hi + "\n");
    }
  }
  Write(dir + "/all_defaults", all);
  Write(dir + "/typical",
        "BRAID_FUSION_THRESHOLD_BYTES=1048576\nBRAID_CYCLE_TIME_MS=2.5\n"
        "BRAID_LOG_LEVEL=debug\nBRAID_TIMELINE=/tmp/timeline.%r.json\n"
        "BRAID_GPU_BACKEND=mpi\nBRAID_STALL_TIMEOUT_SECONDS=30\n");
  // Misspelt and unknown names, as FindUnknownConfigVars sees them.
  Write(dir + "/unknown_names",
        "BRAID_FUSION_THRESHOLD=1048576\nBRAID_CYCLE_TIME=5\nBRAID_NOT_A_VARIABLE=1\n"
        "OMPI_COMM_WORLD_RANK=0\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_corpus <corpus dir>\n");
    return 2;
  }
  WriteWire(std::string(argv[1]) + "/wire");
  WriteConfig(std::string(argv[1]) + "/config");
  return 0;
}
