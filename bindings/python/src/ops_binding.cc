#include "ops_binding.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/stats.h"
#include "engine_state.h"
#include "errors.h"
#include "ops/restart/device_kernels.h"
#include "ops/restart/slowmo.h"
#include "ops/restart/step_check.h"
#include "tensor_view.h"

namespace py = pybind11;

namespace braid::python {
namespace {

// A restart op and the arrays it was given: they stay referenced until replaced,
// so that the op never holds a pointer into freed memory.
struct PyRestart {
  std::unique_ptr<restart::PeriodicAverager> op;
  restart::SlowMo* slowmo = nullptr;  // op, when it is a SlowMo op
  std::vector<py::object> keepalive;
  std::vector<py::object> slow_keepalive;
  std::atomic<bool> busy{false};
};

// Marks the op in use for one call; a concurrent call from another thread fails.
class InUse {
 public:
  explicit InUse(PyRestart* p) : p_(p) {
    if (p_->busy.exchange(true)) {
      ThrowStatus(InvalidArgument("restart '" + p_->op->name() + "' is in use by another thread"));
    }
  }
  ~InUse() { p_->busy = false; }

 private:
  PyRestart* p_;
};

restart::EnqueueFn DefaultEngine() {
  return [](Request r, std::shared_ptr<Handle>* h) { return EnqueueOnDefault(std::move(r), h); };
}

BufferView ToView(const py::handle& array, const std::string& name, uintptr_t stream,
                  std::vector<py::object>* keep) {
  return FlatView(array, name, /*writable=*/true, stream, keep);
}

std::vector<BufferView> ToViews(const py::sequence& arrays, const std::string& what,
                                uintptr_t stream, std::vector<py::object>* keep) {
  std::vector<BufferView> out;
  for (size_t i = 0; i < arrays.size(); ++i) {
    out.push_back(ToView(arrays[i], what + "[" + std::to_string(i) + "]", stream, keep));
  }
  return out;
}

void SetBuffers(PyRestart& p, const py::sequence& params, const py::sequence& averaged,
                uintptr_t stream) {
  InUse use(&p);
  std::vector<py::object> keep;
  auto pv = ToViews(params, "params", stream, &keep);
  auto av = ToViews(averaged, "averaged", stream, &keep);
  ThrowIfError(p.op->SetBuffers(std::move(pv), std::move(av)));
  p.keepalive = std::move(keep);
}

restart::SlowMo* SlowMoOf(PyRestart& p) {
  if (p.slowmo == nullptr) {
    ThrowStatus(InvalidArgument("restart '" + p.op->name() + "' is not a SlowMo op"));
  }
  return p.slowmo;
}

void SetSlowBuffers(PyRestart& p, const py::object& slow_params, const py::object& slow_momentum,
                    uintptr_t stream) {
  InUse use(&p);
  restart::SlowMo* slowmo = SlowMoOf(p);
  std::vector<py::object> keep;
  BufferView x_old = ToView(slow_params, "slow_params", stream, &keep);
  BufferView s = ToView(slow_momentum, "slow_momentum", stream, &keep);
  ThrowIfError(slowmo->SetSlowBuffers(x_old, s));
  p.slow_keepalive = std::move(keep);
}

// Runs `f` (a restart op call that may wait on the engine) without the GIL.
template <typename F>
void Blocking(PyRestart& p, F f) {
  InUse use(&p);
  Status st;
  {
    py::gil_scoped_release release;
    st = f();
  }
  ThrowIfError(st);
}

std::unique_ptr<PyRestart> MakeLocalSgd(const std::string& name, int64_t period,
                                        int64_t warmup_steps) {
  restart::AveragerOptions options;
  options.name = name;
  options.schedule.period = period;
  options.schedule.warmup_steps = warmup_steps;
  auto p = std::make_unique<PyRestart>();
  ThrowIfError(restart::PeriodicAverager::Create(DefaultEngine(), options, &p->op));
  return p;
}

std::unique_ptr<PyRestart> MakeSlowMo(const std::string& name, int64_t period, double slow_lr,
                                      double slow_momentum, bool nesterov) {
  restart::SlowMoOptions options;
  options.name = name;
  options.schedule.period = period;
  options.slow_lr = slow_lr;
  options.slow_momentum = slow_momentum;
  options.nesterov = nesterov;
  std::unique_ptr<restart::SlowMo> slowmo;
  ThrowIfError(restart::SlowMo::Create(DefaultEngine(), options, &slowmo));
  auto p = std::make_unique<PyRestart>();
  p->slowmo = slowmo.get();
  p->op = std::move(slowmo);
  return p;
}

py::dict Stats() {
  py::dict out;
  const std::pair<const char*, Collective> kinds[] = {
      {"allreduce", Collective::kAllreduce},
      {"allgather", Collective::kAllgather},
      {"broadcast", Collective::kBroadcast},
      {"barrier", Collective::kBarrier},
      {"sparse_allreduce", Collective::kSparseAllreduce},
      {"sparse_allgather", Collective::kSparseAllgather},
      {"neighbor_allreduce", Collective::kNeighborAllreduce},
      {"neighbor_exchange", Collective::kNeighborExchange}};
  for (const auto& [key, c] : kinds) {
    CollectiveCounts counts = ReadStats(c);
    py::dict d;
    d["count"] = counts.count;
    d["bytes"] = counts.bytes;
    if (IsSparse(c)) d["index_bytes"] = counts.index_bytes;
    out[key] = d;
  }
  py::list sent;
  for (int64_t bytes : ReadNeighborSends()) sent.append(bytes);
  out["neighbor_sent_bytes"] = sent;
  return out;
}

void BindRestartOp(py::module_& m) {
  py::class_<PyRestart>(m, "RestartOp")
      .def("set_buffers", &SetBuffers, py::arg("params"), py::arg("averaged"),
           py::arg("stream") = 0)
      .def("set_slow_buffers", &SetSlowBuffers, py::arg("slow_params"), py::arg("slow_momentum"),
           py::arg("stream") = 0)
      .def("init_slow_params",
           [](PyRestart& p) { Blocking(p, [&] { return SlowMoOf(p)->InitSlowParams(); }); })
      .def(
          "step",
          [](PyRestart& p, double lr) {
            bool restarted = false;
            Blocking(p, [&] { return p.op->Step(lr, &restarted); });
            return restarted;
          },
          py::arg("lr") = 0.0)
      .def(
          "restart",
          [](PyRestart& p, double lr) { Blocking(p, [&] { return p.op->RestartNow(lr); }); },
          py::arg("lr") = 0.0)
      .def_property(
          "step_count", [](const PyRestart& p) { return p.op->step(); },
          [](PyRestart& p, int64_t step) {
            if (step < 0) ThrowStatus(InvalidArgument("the step must not be negative"));
            p.op->set_step(step);
          })
      .def_property_readonly("restart_due", [](const PyRestart& p) { return p.op->restart_due(); })
      .def_property_readonly("period", [](const PyRestart& p) { return p.op->schedule().period; })
      .def_property_readonly("warmup_steps",
                             [](const PyRestart& p) { return p.op->schedule().warmup_steps; })
      .def_property_readonly("name", [](const PyRestart& p) { return p.op->name(); })
      .def_property_readonly("packed_count",
                             [](const PyRestart& p) { return p.op->packed_count(); });
}

}  // namespace

void BindOps(py::module_& m) {
  BindRestartOp(m);
  m.def("restart_local_sgd", &MakeLocalSgd, py::arg("name"), py::arg("period"),
        py::arg("warmup_steps") = 0, "A periodic averaging op (local SGD, PR-SGD-Momentum).");
  m.def("restart_slowmo", &MakeSlowMo, py::arg("name"), py::arg("period"), py::arg("slow_lr"),
        py::arg("slow_momentum"), py::arg("nesterov") = false, "A SlowMo / BMUF op.");
  m.attr("restart_check_slots") = restart::kCheckSlots;
  m.def("restart_device_kernels_registered",
        [] { return restart::RestartDeviceKernelsOrNull() != nullptr; });
  m.def("stats", &Stats, "Collectives run by this process and its payload bytes, per kind.");
  m.def("reset_stats", &ResetStats, "Sets the communication counters to zero.");
}

}  // namespace braid::python
