#include "sparse_ops_binding.h"

#include <pybind11/stl.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dlpack_abi.h"
#include "engine_state.h"
#include "errors.h"
#include "handle.h"
#include "ops/compress/sparse_methods.h"
#include "tensor_view.h"

namespace py = pybind11;

namespace braid::python {
namespace {

// A sparse op and the arrays it was given: they stay referenced until replaced, so
// that the op never holds a pointer into freed memory.
struct PySparseOp {
  std::unique_ptr<compress::SparseStep> op;
  std::vector<py::object> keepalive;
  std::atomic<bool> busy{false};
};

// Marks the op in use for one call; a concurrent call from another thread fails.
class InUse {
 public:
  explicit InUse(PySparseOp* p) : p_(p) {
    if (p_->busy.exchange(true)) {
      ThrowStatus(
          InvalidArgument("sparse op '" + p_->op->name() + "' is in use by another thread"));
    }
  }
  ~InUse() { p_->busy = false; }

 private:
  PySparseOp* p_;
};

// One state buffer of an op: host memory through the buffer protocol, any memory
// through DLPack. Holds the op (and so the memory) alive.
struct StateBuffer {
  py::object owner;
  BufferView view;
};

py::object StateDLPack(const StateBuffer& b, const py::args&, const py::kwargs&) {
  // The consumer may drop the tensor without the GIL: the op is released with it.
  std::shared_ptr<void> owner(new py::object(b.owner), [](void* p) {
    py::gil_scoped_acquire gil;
    delete static_cast<py::object*>(p);
  });
  return ExportDLPack(std::move(owner), b.view.data, b.view.dtype, {b.view.count}, b.view.device);
}

py::buffer_info StateBufferInfo(const StateBuffer& b) {
  if (b.view.device != kCpuDevice) {
    ThrowStatus(InvalidArgument("this state buffer is on " + DeviceName(b.view.device) +
                                ": read it through DLPack"));
  }
  const auto size = static_cast<py::ssize_t>(DataTypeSize(b.view.dtype));
  return py::buffer_info(b.view.data, size, BufferFormat(b.view.dtype), 1, {b.view.count}, {size});
}

BufferView ToView(const py::handle& array, const std::string& name, bool writable, uintptr_t stream,
                  std::vector<py::object>* keep) {
  return FlatView(array, name, writable, stream, keep);
}

void SetBuffers(PySparseOp& p, const py::sequence& params, const py::sequence& grads,
                const py::object& dense, uintptr_t stream) {
  InUse use(&p);
  if (params.size() != grads.size()) {
    ThrowStatus(InvalidArgument("sparse op '" + p.op->name() +
                                "': " + std::to_string(params.size()) + " parameters but " +
                                std::to_string(grads.size()) + " gradients"));
  }
  std::vector<py::object> keep;
  std::vector<BufferView> pv, gv;
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string at = "[" + std::to_string(i) + "]";
    pv.push_back(ToView(params[i], "params" + at, true, stream, &keep));
    gv.push_back(ToView(grads[i], "grads" + at, false, stream, &keep));
  }
  std::vector<bool> flags;
  if (!dense.is_none()) {
    for (const py::handle& f : py::reinterpret_borrow<py::sequence>(dense)) {
      flags.push_back(py::cast<bool>(f));
    }
  }
  ThrowIfError(p.op->SetBuffers(std::move(pv), std::move(gv), std::move(flags)));
  p.keepalive = std::move(keep);
}

void Step(PySparseOp& p, double lr, double density, int world_size) {
  InUse use(&p);
  Status st;
  {
    py::gil_scoped_release release;
    p.op->set_world_size(world_size);
    st = p.op->Step(lr, density);
  }
  ThrowIfError(st);
}

StateBuffer State(py::object self, const std::string& name) {
  auto& p = self.cast<PySparseOp&>();
  StateBuffer b;
  ThrowIfError(p.op->State(name, &b.view));
  b.owner = std::move(self);
  return b;
}

compress::SparseMethod MethodOf(const std::string& method) {
  if (method == "mdsgd") return compress::SparseMethod::kMdsgd;
  if (method == "gmc") return compress::SparseMethod::kGmc;
  if (method == "dgc") return compress::SparseMethod::kDgc;
  ThrowStatus(InvalidArgument("unknown sparse method '" + method + "'"));
}

std::unique_ptr<PySparseOp> Make(const std::string& method, const std::string& name, double density,
                                 double momentum, bool nesterov, double weight_decay,
                                 double clip_norm, const std::string& selection,
                                 const std::string& scope, double sample_fraction, uint64_t seed,
                                 bool dense_fallback) {
  compress::SparseStepOptions o;
  o.name = name;
  o.method = MethodOf(method);
  o.density = density;
  o.momentum = momentum;
  o.nesterov = nesterov;
  o.weight_decay = weight_decay;
  o.clip_norm = clip_norm;
  ThrowIfError(compress::ParseSelection(selection, &o.selection));
  ThrowIfError(compress::ParseScope(scope, &o.scope));
  o.sample_fraction = sample_fraction;
  o.seed = seed;
  o.dense_fallback = dense_fallback;
  auto p = std::make_unique<PySparseOp>();
  auto enqueue = [](Request r, std::shared_ptr<Handle>* h) {
    return EnqueueOnDefault(std::move(r), h);
  };
  ThrowIfError(compress::SparseStep::Create(enqueue, o, &p->op));
  return p;
}

py::dict Stats(const PySparseOp& p) {
  const compress::SparseStepStats& s = p.op->last_stats();
  py::dict d;
  d["pairs"] = s.pairs;
  d["value_bytes"] = s.value_bytes;
  d["index_bytes"] = s.index_bytes;
  d["dense_bytes"] = s.dense_bytes;
  return d;
}

}  // namespace

void BindSparseOps(py::module_& m) {
  py::class_<StateBuffer>(m, "SparseOpState", py::buffer_protocol())
      .def_buffer(&StateBufferInfo)
      .def("__dlpack__", &StateDLPack)
      .def("__dlpack_device__",
           [](const StateBuffer& b) -> py::tuple {
             if (b.view.device == kCpuDevice) return py::make_tuple(kDLCPU, 0);
             return py::make_tuple(kDLCUDA, b.view.device);
           })
      .def_property_readonly("is_host",
                             [](const StateBuffer& b) { return b.view.device == kCpuDevice; });
  py::class_<PySparseOp>(m, "SparseOp")
      .def("set_buffers", &SetBuffers, py::arg("params"), py::arg("grads"), py::arg("dense"),
           py::arg("stream") = 0)
      .def("step", &Step, py::arg("lr"), py::arg("density"), py::arg("world_size"))
      .def("state_names", [](const PySparseOp& p) { return p.op->StateNames(); })
      .def("state", &State, py::arg("name"))
      .def_property(
          "step_count", [](const PySparseOp& p) { return p.op->step(); },
          [](PySparseOp& p, int64_t step) {
            if (step < 0) ThrowStatus(InvalidArgument("the step must not be negative"));
            p.op->set_step(step);
          })
      .def_property_readonly("last_stats", &Stats)
      .def_property_readonly("total", [](const PySparseOp& p) { return p.op->total(); })
      .def_property_readonly("name", [](const PySparseOp& p) { return p.op->name(); });
  m.def("sparse_op", &Make, py::arg("method"), py::arg("name"), py::arg("density"),
        py::arg("momentum"), py::arg("nesterov"), py::arg("weight_decay"), py::arg("clip_norm"),
        py::arg("selection"), py::arg("scope"), py::arg("sample_fraction"), py::arg("seed"),
        py::arg("dense_fallback"), "An M-DSGD ('mdsgd'), GMC ('gmc') or DGC ('dgc') op.");
}

}  // namespace braid::python
