#include "decentralized_binding.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine_state.h"
#include "errors.h"
#include "ops/gossip/decentralized.h"
#include "tensor_view.h"

namespace py = pybind11;

namespace braid::python {
namespace {

using gossip::DecentralizedSGD;

// The op and the arrays it was given: they stay referenced until replaced, so that
// the op never holds a pointer into freed memory.
struct PyDecentralized {
  std::unique_ptr<DecentralizedSGD> op;
  std::vector<py::object> keepalive;
  std::atomic<bool> busy{false};
};

// Marks the op in use for one call; a concurrent call from another thread fails.
class InUse {
 public:
  explicit InUse(PyDecentralized* p) : p_(p) {
    if (p_->busy.exchange(true)) {
      ThrowStatus(InvalidArgument("decentralized SGD '" + p_->op->name() +
                                  "' is in use by another thread"));
    }
  }
  ~InUse() { p_->busy = false; }

 private:
  PyDecentralized* p_;
};

std::vector<BufferView> Views(const py::sequence& arrays, const std::string& what, uintptr_t stream,
                              std::vector<py::object>* keep) {
  std::vector<BufferView> out;
  for (size_t i = 0; i < arrays.size(); ++i) {
    out.push_back(
        FlatView(arrays[i], what + "[" + std::to_string(i) + "]", /*writable=*/true, stream, keep));
  }
  return out;
}

void SetBuffers(PyDecentralized& p, const py::sequence& params, const py::sequence& grads,
                const py::sequence& momentum, uintptr_t stream) {
  InUse use(&p);
  std::vector<py::object> keep;
  auto x = Views(params, "params", stream, &keep);
  auto g = Views(grads, "grads", stream, &keep);
  auto u = Views(momentum, "momentum", stream, &keep);
  ThrowIfError(p.op->SetBuffers(std::move(x), std::move(g), std::move(u)));
  p.keepalive = std::move(keep);
}

// Runs `f` (an op call that may wait on the engine) without the GIL.
template <typename F>
void Blocking(PyDecentralized& p, F f) {
  InUse use(&p);
  Status st;
  {
    py::gil_scoped_release release;
    st = f();
  }
  ThrowIfError(st);
}

std::unique_ptr<PyDecentralized> Make(const std::string& name, const gossip::Graph& graph, int rank,
                                      int size, double momentum, bool nesterov, bool mix_momentum,
                                      int64_t average_period, double weight_decay) {
  gossip::DecentralizedOptions o;
  o.name = name;
  o.rank = rank;
  o.size = size;
  o.graph = graph;
  o.momentum = momentum;
  o.nesterov = nesterov;
  o.mix_momentum = mix_momentum;
  o.average_period = average_period;
  o.weight_decay = weight_decay;
  auto p = std::make_unique<PyDecentralized>();
  gossip::EnqueueFn enqueue = [](Request r, std::shared_ptr<Handle>* h) {
    return EnqueueOnDefault(std::move(r), h);
  };
  ThrowIfError(DecentralizedSGD::Create(std::move(enqueue), std::move(o), &p->op));
  return p;
}

}  // namespace

void BindDecentralized(py::module_& m) {
  py::class_<PyDecentralized>(m, "DecentralizedOp")
      .def("set_buffers", &SetBuffers, py::arg("params"), py::arg("grads"), py::arg("momentum"),
           py::arg("stream") = 0)
      .def(
          "step",
          [](PyDecentralized& p, double lr) { Blocking(p, [&] { return p.op->Step(lr); }); },
          py::arg("lr"))
      .def("mix", [](PyDecentralized& p) { Blocking(p, [&] { return p.op->Mix(); }); })
      .def("consensus", [](PyDecentralized& p) { Blocking(p, [&] { return p.op->Consensus(); }); })
      .def("consensus_distance",
           [](PyDecentralized& p) {
             double d = 0.0;
             Blocking(p, [&] { return p.op->ConsensusDistance(&d); });
             return d;
           })
      .def_property(
          "step_count", [](const PyDecentralized& p) { return p.op->step(); },
          [](PyDecentralized& p, int64_t step) {
            if (step < 0) ThrowStatus(InvalidArgument("the step must not be negative"));
            p.op->set_step(step);
          })
      .def_property_readonly("average_due",
                             [](const PyDecentralized& p) { return p.op->average_due(); })
      .def_property_readonly("mixed_count",
                             [](const PyDecentralized& p) { return p.op->mixed_count(); })
      .def("mix_name", [](const PyDecentralized& p, int64_t t) { return p.op->MixName(t); })
      .def_property_readonly("name", [](const PyDecentralized& p) { return p.op->name(); });
  m.def("decentralized_sgd", &Make, py::arg("name"), py::arg("graph"), py::arg("rank"),
        py::arg("size"), py::arg("momentum"), py::arg("nesterov"), py::arg("mix_momentum"),
        py::arg("average_period"), py::arg("weight_decay"),
        "A decentralized momentum SGD op (Yu, Jin, Yang 2019, Algorithm 2) over `graph`.");
}

}  // namespace braid::python
