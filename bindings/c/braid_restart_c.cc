// The C API of the restart ops (local SGD, PR-SGD-Momentum, SlowMo / BMUF) and of
// the communication counters, over the default engine (include/braid/braid.h).
#include <memory>
#include <string>
#include <vector>

#include "bindings/c/default_engine.h"
#include "braid/braid.h"
#include "core/stage_times.h"
#include "core/stats.h"
#include "ops/restart/slowmo.h"

struct braid_restart_s {
  std::unique_ptr<braid::restart::PeriodicAverager> op;
  braid::restart::SlowMo* slowmo = nullptr;  // op, when it is a SlowMo op
};

namespace {

using braid::BufferView;
using braid::Status;
using braid::capi::Report;

braid::restart::EnqueueFn DefaultEngine() {
  return [](braid::Request r, std::shared_ptr<braid::Handle>* h) {
    return braid::capi::EnqueueOnDefault(std::move(r), h);
  };
}

Status NullOp() {
  return braid::InvalidArgument("the restart op is NULL");
}

int Created(braid_restart_s* made, braid_restart_t* op) {
  *op = made;
  return Report(Status::OK());
}

}  // namespace

extern "C" {

int braid_stats(int collective, int64_t* count, int64_t* bytes) {
  return braid::capi::CallC("braid_stats", [&]() -> int {
    if (collective < BRAID_ALLREDUCE || collective > BRAID_NEIGHBOR_EXCHANGE ||
        collective == static_cast<int>(braid::Collective::kJoin)) {
      return Report(
          braid::InvalidArgument("braid_stats: unknown collective " + std::to_string(collective)));
    }
    braid::CollectiveCounts c = braid::ReadStats(static_cast<braid::Collective>(collective));
    if (count != nullptr) *count = c.count;
    if (bytes != nullptr) *bytes = c.bytes;
    return Report(Status::OK());
  });
}

int braid_stage_times(int stage, int64_t* count, double* total_us) {
  return braid::capi::CallC("braid_stage_times", [&]() -> int {
    if (stage < 0 || stage >= braid::kNumStages) {
      return Report(
          braid::InvalidArgument("braid_stage_times: unknown stage " + std::to_string(stage)));
    }
    braid::StageTotal t = braid::ReadStage(static_cast<braid::Stage>(stage));
    if (count != nullptr) *count = t.count;
    if (total_us != nullptr) *total_us = static_cast<double>(t.nanoseconds) / 1000.0;
    return Report(Status::OK());
  });
}

int braid_reset_stats(void) {
  return braid::capi::CallC("braid_reset_stats", [&]() -> int {
    braid::ResetStats();
    braid::ResetStageTimes();
    return Report(Status::OK());
  });
}

int braid_local_sgd_create(const char* name, int64_t period, int64_t warmup_steps,
                           braid_restart_t* op) {
  return braid::capi::CallC("braid_local_sgd_create", [&]() -> int {
    if (op == nullptr) return Report(braid::InvalidArgument("the op pointer is NULL"));
    braid::restart::AveragerOptions options;
    options.name = name ? name : "";
    options.schedule.period = period;
    options.schedule.warmup_steps = warmup_steps;
    auto made = std::make_unique<braid_restart_s>();
    Status st = braid::restart::PeriodicAverager::Create(DefaultEngine(), options, &made->op);
    if (!st.ok()) return Report(st);
    return Created(made.release(), op);
  });
}

int braid_slowmo_create(const char* name, int64_t period, double slow_lr, double slow_momentum,
                        int nesterov, braid_restart_t* op) {
  return braid::capi::CallC("braid_slowmo_create", [&]() -> int {
    if (op == nullptr) return Report(braid::InvalidArgument("the op pointer is NULL"));
    braid::restart::SlowMoOptions options;
    options.name = name ? name : "";
    options.schedule.period = period;
    options.slow_lr = slow_lr;
    options.slow_momentum = slow_momentum;
    options.nesterov = nesterov != 0;
    std::unique_ptr<braid::restart::SlowMo> slowmo;
    Status st = braid::restart::SlowMo::Create(DefaultEngine(), options, &slowmo);
    if (!st.ok()) return Report(st);
    auto made = std::make_unique<braid_restart_s>();
    made->slowmo = slowmo.get();
    made->op = std::move(slowmo);
    return Created(made.release(), op);
  });
}

int braid_restart_set_buffers(braid_restart_t op, const braid_tensor_t* params, int num_params,
                              const braid_tensor_t* averaged, int num_averaged) {
  return braid::capi::CallC("braid_restart_set_buffers", [&]() -> int {
    if (op == nullptr) return Report(NullOp());
    std::vector<BufferView> p, a;
    Status st = braid::capi::TensorViews(params, num_params, "params", &p);
    if (st.ok()) st = braid::capi::TensorViews(averaged, num_averaged, "averaged", &a);
    if (st.ok()) st = op->op->SetBuffers(std::move(p), std::move(a));
    return Report(st);
  });
}

int braid_restart_set_slow_buffers(braid_restart_t op, const braid_tensor_t* slow_params,
                                   const braid_tensor_t* slow_momentum) {
  return braid::capi::CallC("braid_restart_set_slow_buffers", [&]() -> int {
    if (op == nullptr) return Report(NullOp());
    if (op->slowmo == nullptr) {
      return Report(braid::InvalidArgument("restart '" + op->op->name() +
                                           "' is not a SlowMo op: it has no slow buffers"));
    }
    std::vector<BufferView> x_old, s;
    Status st = braid::capi::TensorViews(slow_params, 1, "slow_params", &x_old);
    if (st.ok()) st = braid::capi::TensorViews(slow_momentum, 1, "slow_momentum", &s);
    if (st.ok()) st = op->slowmo->SetSlowBuffers(x_old[0], s[0]);
    return Report(st);
  });
}

int braid_restart_init_slow_params(braid_restart_t op) {
  return braid::capi::CallC("braid_restart_init_slow_params", [&]() -> int {
    if (op == nullptr) return Report(NullOp());
    if (op->slowmo == nullptr) {
      return Report(braid::InvalidArgument("restart '" + op->op->name() + "' is not a SlowMo op"));
    }
    return Report(op->slowmo->InitSlowParams());
  });
}

int braid_restart_step(braid_restart_t op, double lr, int* restarted) {
  return braid::capi::CallC("braid_restart_step", [&]() -> int {
    if (op == nullptr) return Report(NullOp());
    bool did = false;
    Status st = op->op->Step(lr, &did);
    if (restarted != nullptr) *restarted = did ? 1 : 0;
    return Report(st);
  });
}

int braid_restart_now(braid_restart_t op, double lr) {
  return braid::capi::CallC("braid_restart_now", [&]() -> int {
    if (op == nullptr) return Report(NullOp());
    return Report(op->op->RestartNow(lr));
  });
}

int braid_restart_due(braid_restart_t op) {
  return braid::capi::CallC("braid_restart_due", [&]() -> int {
    return op == nullptr ? -1 : (op->op->restart_due() ? 1 : 0);
  });
}

int braid_restart_get_step(braid_restart_t op, int64_t* step) {
  return braid::capi::CallC("braid_restart_get_step", [&]() -> int {
    if (op == nullptr || step == nullptr) return Report(braid::InvalidArgument("a NULL argument"));
    *step = op->op->step();
    return Report(Status::OK());
  });
}

int braid_restart_set_step(braid_restart_t op, int64_t step) {
  return braid::capi::CallC("braid_restart_set_step", [&]() -> int {
    if (op == nullptr) return Report(NullOp());
    if (step < 0) return Report(braid::InvalidArgument("the step must not be negative"));
    op->op->set_step(step);
    return Report(Status::OK());
  });
}

void braid_restart_free(braid_restart_t op) {
  delete op;
}

}  // extern "C"
