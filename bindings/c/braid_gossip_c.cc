// The C API of decentralized momentum SGD (ops/gossip/decentralized.h) over the
// default engine (include/braid/braid.h): the graph is built for braid_size()
// ranks, and this process is rank braid_rank() in it.
#include <memory>
#include <string>
#include <vector>

#include "bindings/c/default_engine.h"
#include "braid/braid.h"
#include "ops/gossip/decentralized.h"

struct braid_gossip_s {
  std::unique_ptr<braid::gossip::DecentralizedSGD> op;
};

namespace {

using braid::BufferView;
using braid::Status;
using braid::capi::Report;
namespace gossip = braid::gossip;

gossip::EnqueueFn DefaultEngine() {
  return [](braid::Request r, std::shared_ptr<braid::Handle>* h) {
    return braid::capi::EnqueueOnDefault(std::move(r), h);
  };
}

Status NullOp() {
  return braid::InvalidArgument("the decentralized SGD op is NULL");
}

// `n` C tensors (or none when `ts` is NULL and `optional`) as flat buffer views.
Status ToViews(const braid_tensor_t* ts, int n, const char* what, bool optional,
               std::vector<BufferView>* out) {
  out->clear();
  if (ts == nullptr && optional) return Status::OK();
  return braid::capi::TensorViews(ts, n, what, out);
}

// The graph the options name, for `size` ranks.
Status MakeGraph(const braid_gossip_options_t& o, int size, gossip::Graph* graph) {
  if (o.matrices != nullptr) {
    if (o.num_matrices < 1) {
      return braid::InvalidArgument("num_matrices must be at least 1 when matrices are given");
    }
    const size_t n2 = static_cast<size_t>(size) * static_cast<size_t>(size);
    std::vector<std::vector<double>> ws;
    for (int m = 0; m < o.num_matrices; ++m) {
      const double* w = o.matrices + static_cast<size_t>(m) * n2;
      ws.emplace_back(w, w + n2);
    }
    return gossip::Graph::FromMatrices(size, std::move(ws), graph);
  }
  const std::string topology = o.topology != nullptr ? o.topology : "ring";
  gossip::GraphKind kind;
  BRAID_RETURN_IF_ERROR(gossip::ParseGraphKind(topology, &kind));
  if (kind == gossip::GraphKind::kMatrix) {
    return braid::InvalidArgument("topology \"matrix\": give the matrices instead");
  }
  if (kind == gossip::GraphKind::kBase) return gossip::Graph::Base(size, o.max_degree, graph);
  return gossip::Graph::Make(kind, size, graph);
}

Status Create(const char* name, const braid_gossip_options_t* options, braid_gossip_s* made) {
  braid_gossip_options_t o;
  braid_gossip_options_init(&o);
  if (options != nullptr) o = *options;
  const int rank = braid_rank(), size = braid_size();
  if (rank < 0 || size < 1) {
    return Status(braid::StatusCode::kNotInitialized,
                  "decentralized SGD needs the engine (braid_init) to know the world size");
  }
  gossip::DecentralizedOptions d;
  d.name = name != nullptr ? name : "";
  d.rank = rank;
  d.size = size;
  BRAID_RETURN_IF_ERROR(MakeGraph(o, size, &d.graph));
  d.momentum = o.momentum;
  d.nesterov = o.nesterov != 0;
  d.mix_momentum = o.mix_momentum != 0;
  d.average_period = o.average_period;
  d.weight_decay = o.weight_decay;
  return gossip::DecentralizedSGD::Create(DefaultEngine(), std::move(d), &made->op);
}

}  // namespace

extern "C" {

void braid_gossip_options_init(braid_gossip_options_t* options) {
  if (options == nullptr) return;
  *options = braid_gossip_options_t{};
  options->topology = "ring";
  options->max_degree = 1;
  options->momentum = 0.9;
  options->mix_momentum = 1;
}

int braid_gossip_create(const char* name, const braid_gossip_options_t* options,
                        braid_gossip_t* op) {
  return braid::capi::CallC("braid_gossip_create", [&]() -> int {
    if (op == nullptr) return Report(braid::InvalidArgument("the op pointer is NULL"));
    auto made = std::make_unique<braid_gossip_s>();
    Status st = Create(name, options, made.get());
    if (st.ok()) *op = made.release();
    return Report(st);
  });
}

int braid_gossip_set_buffers(braid_gossip_t op, const braid_tensor_t* params,
                             const braid_tensor_t* grads, const braid_tensor_t* momentum, int num) {
  return braid::capi::CallC("braid_gossip_set_buffers", [&]() -> int {
    if (op == nullptr) return Report(NullOp());
    std::vector<BufferView> p, g, u;
    Status st = ToViews(params, num, "params", false, &p);
    if (st.ok()) st = ToViews(grads, num, "grads", true, &g);
    if (st.ok()) st = ToViews(momentum, num, "momentum", true, &u);
    if (st.ok()) st = op->op->SetBuffers(std::move(p), std::move(g), std::move(u));
    return Report(st);
  });
}

int braid_gossip_step(braid_gossip_t op, double lr) {
  return braid::capi::CallC("braid_gossip_step", [&]() -> int {
    return Report(op == nullptr ? NullOp() : op->op->Step(lr));
  });
}

int braid_gossip_mix(braid_gossip_t op) {
  return braid::capi::CallC("braid_gossip_mix", [&]() -> int {
    return Report(op == nullptr ? NullOp() : op->op->Mix());
  });
}

int braid_gossip_consensus(braid_gossip_t op) {
  return braid::capi::CallC("braid_gossip_consensus", [&]() -> int {
    return Report(op == nullptr ? NullOp() : op->op->Consensus());
  });
}

int braid_gossip_consensus_distance(braid_gossip_t op, double* distance) {
  return braid::capi::CallC("braid_gossip_consensus_distance", [&]() -> int {
    if (op == nullptr || distance == nullptr) {
      return Report(braid::InvalidArgument("a NULL argument"));
    }
    return Report(op->op->ConsensusDistance(distance));
  });
}

int braid_gossip_get_step(braid_gossip_t op, int64_t* step) {
  return braid::capi::CallC("braid_gossip_get_step", [&]() -> int {
    if (op == nullptr || step == nullptr) return Report(braid::InvalidArgument("a NULL argument"));
    *step = op->op->step();
    return Report(Status::OK());
  });
}

int braid_gossip_set_step(braid_gossip_t op, int64_t step) {
  return braid::capi::CallC("braid_gossip_set_step", [&]() -> int {
    if (op == nullptr) return Report(NullOp());
    if (step < 0) return Report(braid::InvalidArgument("the step must not be negative"));
    op->op->set_step(step);
    return Report(Status::OK());
  });
}

void braid_gossip_free(braid_gossip_t op) {
  delete op;
}

}  // extern "C"
