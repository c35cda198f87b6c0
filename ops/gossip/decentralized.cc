#include "ops/gossip/decentralized.h"

#include <cmath>
#include <utility>

#include "ops/gossip/decentralized_buffers.h"
#include "ops/restart/step_check.h"

namespace braid::gossip {
namespace {

int64_t Total(const std::vector<BufferView>& views) {
  int64_t n = 0;
  for (const BufferView& v : views) n += v.count;
  return n;
}

std::vector<int32_t> Ranks(const std::vector<Neighbor>& ns) {
  std::vector<int32_t> out;
  for (const Neighbor& n : ns) out.push_back(n.rank);
  return out;
}

}  // namespace

Status DecentralizedOptions::Validate() const {
  const std::string prefix = OpPrefix(name);
  if (name.empty()) return InvalidArgument("a decentralized SGD op needs a name");
  if (size < 1 || rank < 0 || rank >= size) {
    return InvalidArgument(prefix + "rank " + std::to_string(rank) + " is not in a world of " +
                           std::to_string(size));
  }
  if (graph.size() != size) {
    return InvalidArgument(prefix + "the graph has " + std::to_string(graph.size()) +
                           " ranks, the world " + std::to_string(size));
  }
  if (!std::isfinite(momentum) || momentum < 0.0 || momentum >= 1.0) {
    return InvalidArgument(prefix + "the momentum must be in [0, 1) (got " +
                           std::to_string(momentum) + ")");
  }
  if (!std::isfinite(weight_decay) || weight_decay < 0.0) {
    return InvalidArgument(prefix + "weight_decay must not be negative (got " +
                           std::to_string(weight_decay) + ")");
  }
  if (average_period < 0) {
    return InvalidArgument(prefix + "average_period must not be negative (got " +
                           std::to_string(average_period) + "; 0: never)");
  }
  return Status::OK();
}

Status DecentralizedSGD::Create(EnqueueFn enqueue, DecentralizedOptions options,
                                std::unique_ptr<DecentralizedSGD>* out) {
  BRAID_RETURN_IF_ERROR(options.Validate());
  if (!enqueue) return InvalidArgument(OpPrefix(options.name) + "no engine to run on");
  out->reset(new DecentralizedSGD(std::move(enqueue), std::move(options)));
  return Status::OK();
}

DecentralizedSGD::DecentralizedSGD(EnqueueFn enqueue, DecentralizedOptions options)
    : enqueue_(std::move(enqueue)), options_(std::move(options)) {}

Status DecentralizedSGD::SetBuffers(std::vector<BufferView> params, std::vector<BufferView> grads,
                                    std::vector<BufferView> momentum) {
  const std::string& n = name();
  if (params.empty()) return InvalidArgument(OpPrefix(n) + "no parameter buffers given");
  const DataType dtype = params[0].dtype;
  const int device = params[0].device;
  BRAID_RETURN_IF_ERROR(CheckViews(n, "params", params, dtype, device));
  BRAID_RETURN_IF_ERROR(CheckViews(n, "grads", grads, dtype, device));
  BRAID_RETURN_IF_ERROR(CheckViews(n, "momentum", momentum, dtype, device));
  BRAID_RETURN_IF_ERROR(CheckPaired(n, "grads", params, grads));
  BRAID_RETURN_IF_ERROR(CheckPaired(n, "momentum", params, momentum));
  const GossipDeviceKernels* kernels = nullptr;
  if (device != kCpuDevice) BRAID_RETURN_IF_ERROR(FindDeviceKernels(n, device, &kernels));
  if (memory_ == nullptr || dtype != dtype_ || device != device_) {
    std::unique_ptr<restart::PackMemory> memory;
    BRAID_RETURN_IF_ERROR(restart::PackMemory::Create(device, dtype, n, &memory));
    memory_ = std::move(memory);
  }
  kernels_ = kernels;
  dtype_ = dtype;
  device_ = device;
  params_ = std::move(params);
  grads_ = std::move(grads);
  momentum_ = std::move(momentum);
  params_count_ = Total(params_);
  return Status::OK();
}

Status DecentralizedSGD::CheckRegistered(const char* what) const {
  if (memory_ == nullptr) {
    return InvalidArgument(OpPrefix(name()) + what + " before any buffers were registered" +
                           " (SetBuffers)");
  }
  return Status::OK();
}

bool DecentralizedSGD::average_due() const {
  const int64_t k = options_.average_period;
  return k > 0 && (step_ + 1) % k == 0;
}

std::string DecentralizedSGD::MixName(int64_t t) const {
  if (!options_.graph.time_varying()) return name();
  return name() + "/phase" + std::to_string(t % options_.graph.period());
}

int64_t DecentralizedSGD::mixed_count() const {
  return params_count_ + (mixes_momentum() ? Total(momentum_) : 0);
}

Status DecentralizedSGD::Step(double lr) {
  BRAID_RETURN_IF_ERROR(CheckRegistered("a step"));
  if (!std::isfinite(lr) || lr < 0.0) {
    return InvalidArgument(OpPrefix(name()) + "the learning rate must be finite and not negative" +
                           " (got " + std::to_string(lr) + ")");
  }
  if (grads_.empty()) {
    return InvalidArgument(OpPrefix(name()) + "a step needs the gradients (SetBuffers); " +
                           "Mix() mixes without a local step");
  }
  if (momentum_.empty() && options_.momentum != 0.0) {
    return InvalidArgument(OpPrefix(name()) + "the momentum is " +
                           std::to_string(options_.momentum) +
                           " but no momentum buffers are registered (SetBuffers)");
  }
  BRAID_RETURN_IF_ERROR(LocalStep(lr));
  return Communicate();
}

Status DecentralizedSGD::Mix() {
  BRAID_RETURN_IF_ERROR(CheckRegistered("a mixing step"));
  return Communicate();
}

Status DecentralizedSGD::LocalStep(double lr) {
  LocalStepCoefficients c;
  c.lr = lr;
  c.beta = options_.momentum;
  c.weight_decay = options_.weight_decay;
  c.nesterov = options_.nesterov;
  for (size_t i = 0; i < params_.size(); ++i) {
    const BufferView& x = params_[i];
    LocalStepSegment s{x.data, grads_[i].data, momentum_.empty() ? nullptr : momentum_[i].data,
                       x.count, dtype_};
    if (x.count == 0) continue;
    if (kernels_ == nullptr) {
      BRAID_RETURN_IF_ERROR(LocalStepHost(s, c));
    } else {
      BRAID_RETURN_IF_ERROR(kernels_->local_step(device_, s, c, x.stream));
    }
  }
  return Status::OK();
}

Status DecentralizedSGD::Communicate() {
  const int64_t t = step_;
  const bool average = average_due();
  ++step_;
  if (options_.size == 1) return Status::OK();  // W = [1]: nothing to mix
  return average ? Average() : MixWith(t);
}

Status DecentralizedSGD::Enqueue(Request r) {
  std::shared_ptr<Handle> handle;
  BRAID_RETURN_IF_ERROR(enqueue_(std::move(r), &handle));
  return handle->Wait();
}

// One neighbour allreduce of x~ (and u~), packed, with this rank's row of W_t.
Status DecentralizedSGD::MixWith(int64_t t) {
  MixingWeights w;
  BRAID_RETURN_IF_ERROR(options_.graph.Weights(options_.rank, t, &w));
  const bool with_u = mixes_momentum();
  const int64_t total = mixed_count();
  BRAID_RETURN_IF_ERROR(memory_->Reserve(total));
  BRAID_RETURN_IF_ERROR(memory_->Gather(params_, memory_->data(), 0));
  if (with_u) BRAID_RETURN_IF_ERROR(memory_->Gather(momentum_, memory_->data(), params_count_));

  Request r;
  r.meta.name = MixName(t);
  r.meta.collective = Collective::kNeighborAllreduce;
  r.meta.dtype = dtype_;
  r.meta.device = device_;
  r.meta.shape = {total};
  r.meta.send_to = Ranks(w.send_to);
  r.meta.recv_from = Ranks(w.recv_from);
  r.self_weight = w.self_weight;
  for (const Neighbor& n : w.recv_from) r.recv_weights.push_back(n.weight);
  r.input = r.output = memory_->data();
  r.stream = stream();
  BRAID_RETURN_IF_ERROR(Enqueue(std::move(r)));

  BRAID_RETURN_IF_ERROR(memory_->Scatter(0, 1.0, params_));
  return with_u ? memory_->Scatter(params_count_, 1.0, momentum_) : Status::OK();
}

Status DecentralizedSGD::SumWithCheck(const std::string& request_name,
                                      const std::vector<BufferView>& parts, int64_t* ranks) {
  restart::CheckedSum sum;
  sum.name = request_name;
  sum.step = step_;
  sum.dtype = dtype_;
  sum.device = device_;
  sum.stream = stream();
  return restart::SumWithStepCheck(enqueue_, sum, parts, memory_.get(), ranks);
}

// The exact average of x (and u, when registered) over the ranks, in one allreduce.
Status DecentralizedSGD::Average() {
  std::vector<BufferView> parts = params_;
  parts.insert(parts.end(), momentum_.begin(), momentum_.end());
  int64_t ranks = 0;
  BRAID_RETURN_IF_ERROR(SumWithCheck(name() + "/average", parts, &ranks));
  const double inv = 1.0 / static_cast<double>(ranks);
  BRAID_RETURN_IF_ERROR(memory_->Scatter(0, inv, params_));
  return memory_->Scatter(params_count_, inv, momentum_);
}

Status DecentralizedSGD::Consensus() {
  BRAID_RETURN_IF_ERROR(CheckRegistered("a consensus"));
  if (options_.size == 1) return Status::OK();
  return Average();
}

Status DecentralizedSGD::ConsensusDistance(double* distance) {
  BRAID_RETURN_IF_ERROR(CheckRegistered("the consensus distance"));
  if (options_.size == 1) {
    *distance = 0.0;
    return Status::OK();
  }
  // xbar from the sum of x; then each rank's ||x_i - xbar||^2, summed by a second
  // allreduce. Differences first, so that no large norms cancel.
  int64_t ranks = 0;
  BRAID_RETURN_IF_ERROR(SumWithCheck(name() + "/distance.mean", params_, &ranks));
  const double inv = 1.0 / static_cast<double>(ranks);
  double local = 0.0;
  int64_t offset = 0;
  for (const BufferView& x : params_) {
    const void* sum =
        static_cast<char*>(memory_->data()) + offset * static_cast<int64_t>(DataTypeSize(dtype_));
    double part = 0.0;
    if (x.count > 0 && kernels_ == nullptr) {
      BRAID_RETURN_IF_ERROR(SquaredDistanceHost(x.data, sum, x.count, dtype_, inv, &part));
    } else if (x.count > 0) {
      BRAID_RETURN_IF_ERROR(
          kernels_->squared_distance(device_, x.data, sum, x.count, dtype_, inv, &part, x.stream));
    }
    local += part;
    offset += x.count;
  }
  Request r;
  r.meta.name = name() + "/distance";
  r.meta.collective = Collective::kAllreduce;
  r.meta.dtype = DataType::kFloat64;
  r.meta.op = ReduceOp::kSum;
  r.meta.device = kCpuDevice;
  r.meta.shape = {1};
  r.input = r.output = &local;
  BRAID_RETURN_IF_ERROR(Enqueue(std::move(r)));
  *distance = std::sqrt(local * inv);
  return Status::OK();
}

}  // namespace braid::gossip
