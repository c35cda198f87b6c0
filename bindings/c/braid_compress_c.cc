// The C API of the sparse training ops (M-DSGD, GMC, DGC) over the default engine
// (include/braid/braid.h, ops/compress/sparse_methods.h).
#include <memory>
#include <string>
#include <vector>

#include "bindings/c/default_engine.h"
#include "braid/braid.h"
#include "ops/compress/sparse_methods.h"

struct braid_sparse_op_s {
  std::unique_ptr<braid::compress::SparseStep> op;
};

namespace {

using braid::BufferView;
using braid::Status;
using braid::capi::Report;
namespace compress = braid::compress;

Status NullOp() {
  return braid::InvalidArgument("the sparse op is NULL");
}

Status OptionsOf(const char* name, compress::SparseMethod method, const braid_sparse_options_t* in,
                 compress::SparseStepOptions* out) {
  braid_sparse_options_t o;
  braid_sparse_options_init(&o);
  if (in != nullptr) o = *in;
  out->name = name == nullptr ? "" : name;
  out->method = method;
  out->density = o.density;
  out->momentum = o.momentum;
  out->nesterov = o.nesterov != 0;
  out->weight_decay = o.weight_decay;
  out->clip_norm = o.clip_norm;
  if (o.selection < BRAID_SELECT_TOPK || o.selection > BRAID_SELECT_RANDOMK) {
    return braid::InvalidArgument("unknown selection " + std::to_string(o.selection));
  }
  if (o.scope != BRAID_SCOPE_TENSOR && o.scope != BRAID_SCOPE_GLOBAL) {
    return braid::InvalidArgument("unknown scope " + std::to_string(o.scope));
  }
  out->selection = static_cast<compress::SelectionMethod>(o.selection);
  out->scope = static_cast<compress::SelectionScope>(o.scope);
  out->sample_fraction = o.sample_fraction;
  out->seed = o.seed;
  out->dense_fallback = o.dense_fallback != 0;
  return Status::OK();
}

int Create(const char* function, const char* name, compress::SparseMethod method,
           const braid_sparse_options_t* options, braid_sparse_op_t* op) {
  return braid::capi::CallC(function, [&]() -> int {
    if (op == nullptr) return Report(braid::InvalidArgument("the op pointer is NULL"));
    compress::SparseStepOptions o;
    Status st = OptionsOf(name, method, options, &o);
    auto made = std::make_unique<braid_sparse_op_s>();
    auto enqueue = [](braid::Request r, std::shared_ptr<braid::Handle>* h) {
      return braid::capi::EnqueueOnDefault(std::move(r), h);
    };
    if (st.ok()) st = compress::SparseStep::Create(enqueue, o, &made->op);
    if (!st.ok()) return Report(st);
    *op = made.release();
    return Report(Status::OK());
  });
}

}  // namespace

extern "C" {

void braid_sparse_options_init(braid_sparse_options_t* options) {
  if (options == nullptr) return;
  *options = braid_sparse_options_t{};
  options->density = 0.01;
  options->momentum = 0.9;
  options->selection = BRAID_SELECT_TOPK;
  options->scope = BRAID_SCOPE_TENSOR;
  options->sample_fraction = 0.01;
  options->dense_fallback = 1;
}

int braid_mdsgd_create(const char* name, const braid_sparse_options_t* options,
                       braid_sparse_op_t* op) {
  return Create("braid_mdsgd_create", name, compress::SparseMethod::kMdsgd, options, op);
}

int braid_gmc_create(const char* name, const braid_sparse_options_t* options,
                     braid_sparse_op_t* op) {
  return Create("braid_gmc_create", name, compress::SparseMethod::kGmc, options, op);
}

int braid_dgc_create(const char* name, const braid_sparse_options_t* options,
                     braid_sparse_op_t* op) {
  return Create("braid_dgc_create", name, compress::SparseMethod::kDgc, options, op);
}

int braid_sparse_op_set_buffers(braid_sparse_op_t op, const braid_tensor_t* params,
                                const braid_tensor_t* grads, int num, const int* dense) {
  return braid::capi::CallC("braid_sparse_op_set_buffers", [&]() -> int {
    if (op == nullptr) return Report(NullOp());
    std::vector<BufferView> p, g;
    std::vector<bool> flags;
    if (dense != nullptr) {
      for (int i = 0; i < num; ++i) flags.push_back(dense[i] != 0);
    }
    Status st = braid::capi::TensorViews(params, num, "params", &p);
    if (st.ok()) st = braid::capi::TensorViews(grads, num, "grads", &g);
    if (st.ok()) st = op->op->SetBuffers(std::move(p), std::move(g), std::move(flags));
    return Report(st);
  });
}

int braid_sparse_op_step(braid_sparse_op_t op, double lr, double density) {
  return braid::capi::CallC("braid_sparse_op_step", [&]() -> int {
    if (op == nullptr) return Report(NullOp());
    op->op->set_world_size(braid_size());
    return Report(op->op->Step(lr, density));
  });
}

int braid_sparse_op_state(braid_sparse_op_t op, const char* name, void** data, int64_t* count) {
  return braid::capi::CallC("braid_sparse_op_state", [&]() -> int {
    if (op == nullptr || name == nullptr || data == nullptr || count == nullptr) {
      return Report(braid::InvalidArgument("braid_sparse_op_state: a NULL argument"));
    }
    BufferView v;
    Status st = op->op->State(name, &v);
    if (!st.ok()) return Report(st);
    *data = v.data;
    *count = v.count;
    return Report(Status::OK());
  });
}

int braid_sparse_op_get_step(braid_sparse_op_t op, int64_t* step) {
  return braid::capi::CallC("braid_sparse_op_get_step", [&]() -> int {
    if (op == nullptr || step == nullptr) return Report(braid::InvalidArgument("a NULL argument"));
    *step = op->op->step();
    return Report(Status::OK());
  });
}

int braid_sparse_op_set_step(braid_sparse_op_t op, int64_t step) {
  return braid::capi::CallC("braid_sparse_op_set_step", [&]() -> int {
    if (op == nullptr) return Report(NullOp());
    if (step < 0) return Report(braid::InvalidArgument("the step must not be negative"));
    op->op->set_step(step);
    return Report(Status::OK());
  });
}

int braid_sparse_op_stats(braid_sparse_op_t op, int64_t* pairs, int64_t* value_bytes,
                          int64_t* index_bytes, int64_t* dense_bytes) {
  return braid::capi::CallC("braid_sparse_op_stats", [&]() -> int {
    if (op == nullptr) return Report(NullOp());
    const compress::SparseStepStats& s = op->op->last_stats();
    if (pairs != nullptr) *pairs = s.pairs;
    if (value_bytes != nullptr) *value_bytes = s.value_bytes;
    if (index_bytes != nullptr) *index_bytes = s.index_bytes;
    if (dense_bytes != nullptr) *dense_bytes = s.dense_bytes;
    return Report(Status::OK());
  });
}

void braid_sparse_op_free(braid_sparse_op_t op) {
  delete op;
}

}  // extern "C"
