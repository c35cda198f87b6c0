// The sparse training ops on flat buffers: M-DSGD (top-k with error memory and
// local momentum), GMC (global momentum compression) and DGC (deep gradient
// compression). The methods' update equations are in sparse_methods.h; this is
// the step they share. With N ranks, a rank's registered parameters w and
// gradients g (a list of tensors, concatenated into one flat layout with an
// offset per tensor: the sparse tensors in order, then the dense-flagged ones in
// order), each Step(lr, density):
//
//   1. one fused pass per tensor (sparse_passes.h) builds z, what the rank may
//      send, in its memory (and updates the momentum);
//   2. a selection over the flat memory (the tensors are its segments): top-k,
//      DGC's sampled threshold or random-k, per tensor (k_i = ceil(density * n_i))
//      or one k = ceil(density * S) over the S elements of the sparse tensors (scope
//      global), ascending indices into the flat layout;
//   3. the sent entries are taken out of the memory (ExtractSent: sent = z there,
//      memory = 0 there; DGC also zeroes its momentum there: momentum factor masking);
//   4. ONE sparse allreduce (average, the op's name) of the pairs into the flat dense
//      `update` buffer (int32 indices when the flat layout fits, else int64);
//      tensors flagged dense go whole through one dense allreduce (average, the
//      op's name + ".dense");
//   5. the parameters move by the averaged update (sparse_methods.h).
//
// The step waits for the exchange (synchronous). Random-k draws the same indices on
// every rank from (seed, step, tensor). The op owns its state as flat buffers over
// the layout, allocated zeroed on the parameters' device by SetBuffers, exposed by
// name (State) so that a checkpoint can save and restore them.
//
// Every rank must create the same ops (same names) in the same order, register
// tensors of the same sizes, dtypes and dense flags, and step them together. A step
// that fails (a rank's error, a mismatch) leaves the state part-way: restore it.
//
// Threading: one thread at a time per op; ops of different names may step at once.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/buffer.h"
#include "common/status.h"
#include "core/handle.h"
#include "core/request.h"
#include "ops/compress/flat_array.h"
#include "ops/compress/sparse_passes.h"

namespace braid::compress {

// How an op reaches an engine: Engine::Enqueue, or a binding's default engine.
using EnqueueFn = std::function<Status(Request request, std::shared_ptr<Handle>* handle)>;

enum class SparseMethod { kMdsgd, kGmc, kDgc };
enum class SelectionMethod { kTopK, kThreshold, kRandomK };
enum class SelectionScope { kTensor, kGlobal };

struct SparseStepOptions {
  std::string name;  // the allreduces' names: the same on every rank, unique
  SparseMethod method = SparseMethod::kGmc;
  double density = 0.01;  // in [0, 1]; Step may override it per step (warm-up)
  double momentum = 0.9;  // beta (DGC: m)
  bool nesterov = false;  // M-DSGD, DGC
  double weight_decay = 0.0;
  double clip_norm = 0.0;  // DGC: local clipping of g by clip_norm / sqrt(N); 0: off
  SelectionMethod selection = SelectionMethod::kTopK;
  SelectionScope scope = SelectionScope::kTensor;
  double sample_fraction = 0.01;  // threshold selection
  uint64_t seed = 0;              // random-k (shared by every rank), threshold sample
  bool dense_fallback = true;     // the sparse allreduce may run dense when smaller
  int num_threads = 0;            // host selection threads (0: all)
};

// What the last step sent from this rank.
struct SparseStepStats {
  int64_t pairs = 0;        // (index, value) pairs
  int64_t value_bytes = 0;  // their values
  int64_t index_bytes = 0;  // their indices
  int64_t dense_bytes = 0;  // the dense-flagged tensors' allreduce
};

class SparseStep {
 public:
  static Status Create(EnqueueFn enqueue, const SparseStepOptions& options,
                       std::unique_ptr<SparseStep>* out);
  virtual ~SparseStep() = default;

  // Registers the parameters and their gradients (pairwise the same counts; all
  // float32 or float64 of one dtype, on one device; contiguous). `dense`: empty or
  // one flag per tensor (true: the tensor is sent whole through the dense
  // allreduce). (Re)allocates zeroed state when the total size, the dtype or the
  // device changes; keeps it otherwise. The buffers must stay valid until replaced.
  Status SetBuffers(std::vector<BufferView> params, std::vector<BufferView> grads,
                    std::vector<bool> dense);

  // One collective step: reads the gradients, updates the parameters in place.
  // density < 0: the op's. `world_size` (N) is needed by DGC's clipping.
  Status Step(double lr, double density = -1.0);
  void set_world_size(int n) { world_size_ = n; }

  // The state buffers by name (flat over the layout, on the parameters' device):
  // writing into them restores a checkpoint.
  std::vector<std::string> StateNames() const;
  Status State(const std::string& name, BufferView* out) const;

  int64_t step() const { return step_; }
  void set_step(int64_t step) { step_ = step; }
  const SparseStepStats& last_stats() const { return stats_; }
  const std::string& name() const { return options_.name; }
  const SparseStepOptions& options() const { return options_; }
  int64_t total() const { return total_; }

 protected:
  SparseStep(EnqueueFn enqueue, const SparseStepOptions& options);

  // The method's pieces (sparse_methods.cc).
  virtual FusedCoefficients Coefficients(double lr, double clip, bool dense) const = 0;
  virtual bool has_momentum() const = 0;
  virtual bool masks_momentum() const { return false; }
  virtual bool keeps_last_update() const { return false; }
  virtual const char* memory_name() const { return "memory"; }
  // Moves the parameters by the exchanged update (the tensors' slices of `update_`
  // and, for dense tensors, of `dense_`).
  virtual Status ApplyUpdate(double lr) = 0;

  struct Segment {
    int64_t offset = 0;         // in the flat layout
    int64_t dense_offset = -1;  // in the dense buffer; -1: sent sparse
    BufferView w, g;
  };

  char* At(const FlatArray& a, int64_t offset) const {
    return static_cast<char*>(a.data()) + offset * static_cast<int64_t>(DataTypeSize(dtype_));
  }
  Status RunApply(const ApplySegment& s, double scale);
  Status RunDenseMomentum(const ApplySegment& s, double mu, double lr, bool nesterov);

  SparseStepOptions options_;
  std::vector<Segment> segments_;
  DataType dtype_ = DataType::kFloat32;
  int device_ = kCpuDevice;
  void* stream_ = nullptr;
  const SparseStepDeviceKernels* kernels_ = nullptr;
  FlatArray memory_, momentum_, update_, dense_;

 private:
  Status CheckBuffers(const std::vector<BufferView>& params, const std::vector<BufferView>& grads,
                      const std::vector<bool>& dense) const;
  Status Allocate();
  Status ClipFactor(double* clip) const;
  Status FusedPasses(double lr, double clip);
  Status Select(double density, int64_t* k);
  Status SelectPerTensor(double density, int64_t* k);
  Status SelectGlobal(double density, int64_t* k);
  Status RandomIndices(const std::vector<int64_t>& offsets,
                       const std::vector<int64_t>& k_per_segment, int64_t global_k, int64_t* k);
  Status TakeSent(int64_t k);
  Status Exchange(int64_t k);
  uint64_t StepSeed(uint64_t salt) const;

  EnqueueFn enqueue_;
  int world_size_ = 0;
  int64_t step_ = 0;
  int64_t total_ = 0;
  int64_t dense_total_ = 0;
  int64_t sparse_total_ = 0;
  DataType index_dtype_ = DataType::kInt32;
  FlatArray indices_, values_;
  SparseStepStats stats_;
  bool have_buffers_ = false;
};

}  // namespace braid::compress
