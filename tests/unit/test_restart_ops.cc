// The restart ops in one process: the fused SlowMo pass against the equations
// written out here, the step-agreement slots, the schedule, and the ops end to end
// against a fake engine that plays the other ranks (their packed buffers are
// given), on host memory and through a registered device kernel table that works
// on host memory (so the device code path runs without a GPU).
#include <gtest/gtest.h>

#include "braid/config.h"

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/stats.h"
#include "ops/restart/device_kernels.h"
#include "ops/restart/slowmo.h"
#include "ops/restart/slowmo_update.h"
#include "ops/restart/step_check.h"

namespace braid::restart {
namespace {

template <typename T>
BufferView View(std::vector<T>& v, int device = kCpuDevice) {
  BufferView b;
  b.data = v.data();
  b.count = static_cast<int64_t>(v.size());
  b.dtype = sizeof(T) == 8 ? DataType::kFloat64 : DataType::kFloat32;
  b.device = device;
  return b;
}

// SlowMo's outer step (Wang et al., ICLR 2020, Algorithm 1) for one element, in
// double: x0 is x_{t,0}, where the block started, u the slow momentum, xbar the
// average x_{t,tau} over the ranks, gamma the base learning rate. The Nesterov
// variant steps along beta * u_{t+1} + (x_{t,0} - xbar) / gamma instead of u_{t+1}.
void PaperSlowMo(double xbar, double gamma, double alpha, double beta, bool nesterov, double* x0,
                 double* u) {
  const double slow_grad = (*x0 - xbar) / gamma;
  *u = beta * *u + slow_grad;
  *x0 -= alpha * gamma * (nesterov ? beta * *u + slow_grad : *u);
}

// BMUF (Chen and Huo, ICASSP 2016) for one element in its own terms: W, the block
// momentum Delta and the block's start. The block gradient is measured from the
// start; with Nesterov block momentum the next block starts from W + eta * Delta.
struct PaperBmuf {
  double w, delta = 0.0, start;
  explicit PaperBmuf(double x0) : w(x0), start(x0) {}
  void Block(double xbar, double eta, double zeta, bool nesterov) {
    const double g = xbar - start;
    delta = eta * delta + zeta * g;
    w += delta;
    start = nesterov ? w + eta * delta : w;
  }
};

template <typename T>
void CheckSlowMoPass(int64_t n, bool nesterov, double tol) {
  std::vector<T> x(n), sum(n), x_old(n), s(n);
  std::vector<double> rx(n), rx_old(n), rs(n);
  for (int64_t i = 0; i < n; ++i) {
    sum[i] = static_cast<T>(0.25 * (i % 7) - 0.5);
    x_old[i] = static_cast<T>(0.1 * (i % 5));
    s[i] = static_cast<T>(0.01 * (i % 3) - 0.01);
    rx_old[i] = x_old[i];
    rs[i] = s[i];
  }
  const double lr = 0.05, alpha = 0.7, beta = 0.6;
  SlowMoCoefficients c{1.0 / 3, 1.0 / lr, beta, alpha * lr, nesterov};
  SlowMoSegment g{x.data(), sum.data(), x_old.data(), s.data(), n, View(x).dtype};
  ASSERT_TRUE(SlowMoUpdateHost(g, c).ok());
  for (int64_t i = 0; i < n; ++i) {
    PaperSlowMo(static_cast<double>(sum[i]) / 3, lr, alpha, beta, nesterov, &rx_old[i], &rs[i]);
    rx[i] = rx_old[i];  // every rank starts the next block at x_{t+1,0}
    ASSERT_NEAR(x[i], rx[i], tol) << i;
    ASSERT_NEAR(x_old[i], rx_old[i], tol) << i;
    ASSERT_NEAR(s[i], rs[i], tol * 100) << i;  // s carries 1/lr
  }
}

TEST(SlowMoPass, MatchesTheEquations) {
  for (int64_t n : {0, 1, 17, 1000}) {
    for (bool nesterov : {false, true}) {
      CheckSlowMoPass<double>(n, nesterov, 1e-14);
      CheckSlowMoPass<float>(n, nesterov, 1e-6);
    }
  }
}

// The mapping to BMUF: eta = beta, zeta = alpha, Delta = -alpha * lr * s, and x_old
// the block's start, over many blocks at a constant learning rate.
TEST(SlowMoPass, IsBmufInItsOwnTerms) {
  const double lr = 0.05, eta = 0.75, zeta = 1.2;
  for (bool nesterov : {false, true}) {
    double x = 0.8, x_old = 0.8, s = 0.0;
    PaperBmuf bmuf(0.8);
    for (int block = 0; block < 40; ++block) {
      // The ranks' average after the block's local steps: some progress from its start.
      const double xbar = 0.7 * x + 0.1 * std::sin(block);
      const double sum = 4 * xbar;
      SlowMoSegment g{&x, &sum, &x_old, &s, 1, DataType::kFloat64};
      ASSERT_TRUE(SlowMoUpdateHost(g, {0.25, 1.0 / lr, eta, zeta * lr, nesterov}).ok());
      bmuf.Block(xbar, eta, zeta, nesterov);
      ASSERT_NEAR(x, bmuf.start, 1e-12) << "block " << block << " nesterov " << nesterov;
      ASSERT_NEAR(-zeta * lr * s, bmuf.delta, 1e-12) << "block " << block;
    }
  }
}

// A property of block momentum below 1: on a quadratic, where every rank's block of
// gradient steps shrinks its start by q, BMUF-NBM with the paper's eta = 1 - 1/N
// converges (measuring the block from W instead of the look-ahead start, the
// effective momentum is eta * (1 + zeta) > 1 and it diverges).
TEST(SlowMoPass, NesterovBlockMomentumConvergesOnAQuadratic) {
  for (int ranks : {3, 4, 8}) {
    const double q = 0.9, lr = 0.1;
    double x = 1.0, x_old = 1.0, s = 0.0;
    for (int block = 0; block < 300; ++block) {
      const double sum = ranks * q * x;
      SlowMoSegment g{&x, &sum, &x_old, &s, 1, DataType::kFloat64};
      SlowMoCoefficients c{1.0 / ranks, 1.0 / lr, 1.0 - 1.0 / ranks, lr, true};
      ASSERT_TRUE(SlowMoUpdateHost(g, c).ok());
      ASSERT_LE(std::abs(x), 2.0) << "N = " << ranks << ", block " << block;
    }
    EXPECT_LT(std::abs(x), 1e-9) << "N = " << ranks;
  }
}

TEST(SlowMoPass, RejectsOtherTypes) {
  SlowMoSegment g;
  g.dtype = DataType::kFloat16;
  EXPECT_EQ(SlowMoUpdateHost(g, SlowMoCoefficients()).code(), StatusCode::kInvalidArgument);
}

// The slots of `ranks` ranks at `steps` summed, as the allreduce would.
std::vector<double> SummedSlots(const std::vector<int64_t>& steps) {
  std::vector<double> sum(kCheckSlots, 0.0), one(kCheckSlots);
  for (int64_t step : steps) {
    WriteCheckSlots(step, DataType::kFloat64, one.data());
    for (int64_t i = 0; i < kCheckSlots; ++i) sum[i] += one[i];
  }
  return sum;
}

TEST(StepCheck, CountsRanksThatAgree) {
  for (int64_t step : {int64_t{0}, int64_t{1}, int64_t{8}, int64_t{123456789}}) {
    auto sum = SummedSlots({step, step, step});
    int64_t ranks = 0;
    ASSERT_TRUE(ReadCheckSlots(sum.data(), DataType::kFloat64, step, "op", &ranks).ok());
    EXPECT_EQ(ranks, 3);
  }
}

TEST(StepCheck, DisagreementIsAMismatch) {
  // 3 + 5 == 4 + 4: a sum of the counters alone would not see this.
  auto sum = SummedSlots({3, 5});
  int64_t ranks = 0;
  Status st = ReadCheckSlots(sum.data(), DataType::kFloat64, 3, "restart.x", &ranks);
  EXPECT_EQ(st.code(), StatusCode::kMismatch);
  EXPECT_NE(st.message().find("restart.x"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("not at the same step"), std::string::npos) << st.message();
  std::vector<float> one(kCheckSlots);
  WriteCheckSlots(6, DataType::kFloat32, one.data());
  EXPECT_EQ(ReadCheckSlots(one.data(), DataType::kFloat32, 7, "x", &ranks).code(),
            StatusCode::kMismatch);
}

TEST(Schedule, RestartsEveryPeriodAfterTheWarmup) {
  Schedule s{3, 2};
  std::vector<int64_t> restarts;
  for (int64_t t = 1; t <= 12; ++t)
    if (s.IsRestart(t)) restarts.push_back(t);
  EXPECT_EQ(restarts, (std::vector<int64_t>{5, 8, 11}));
  EXPECT_FALSE(Schedule({0, 0}).Validate("x").ok());
  EXPECT_FALSE(Schedule({1, -1}).Validate("x").ok());
}

// Plays `others` further ranks: their payloads are given, their slots are this
// rank's (same step) unless `other_step` says otherwise. Counts its calls.
struct FakeWorld {
  std::vector<std::vector<double>> others;
  int64_t other_step = -1;
  int calls = 0;
  std::vector<std::string> names;

  EnqueueFn Enqueue() {
    return [this](Request r, std::shared_ptr<Handle>* h) {
      ++calls;
      names.push_back(r.meta.name);
      EXPECT_EQ(r.meta.op, ReduceOp::kSum);
      double* data = static_cast<double*>(r.output);
      const int64_t payload = r.meta.NumElements() - kCheckSlots;
      std::vector<double> mine(data + payload, data + payload + kCheckSlots);
      std::vector<double> theirs = mine;
      if (other_step >= 0) WriteCheckSlots(other_step, DataType::kFloat64, theirs.data());
      for (const auto& o : others) {
        for (int64_t i = 0; i < payload; ++i) data[i] += o[static_cast<size_t>(i)];
        for (int64_t i = 0; i < kCheckSlots; ++i) data[payload + i] += theirs[i];
      }
      *h = std::make_shared<Handle>();
      (*h)->Complete(Status::OK());
      return Status::OK();
    };
  }
};

TEST(PeriodicAverager, AveragesEveryBufferInOneAllreducePerRestart) {
  FakeWorld world;
  world.others = {{10, 20, 30, 40, 50}, {1, 2, 3, 4, 5}};  // two more ranks
  std::unique_ptr<PeriodicAverager> op;
  ASSERT_TRUE(PeriodicAverager::Create(world.Enqueue(), {"avg", {2, 0}}, &op).ok());
  std::vector<double> a = {4, 7}, b = {1}, m = {-3, 6};
  ASSERT_TRUE(op->SetBuffers({View(a), View(b)}, {View(m)}).ok());
  EXPECT_EQ(op->packed_count(), 5 + kCheckSlots);
  bool restarted = true;
  ASSERT_TRUE(op->Step(0.0, &restarted).ok());  // step 1 of the period
  EXPECT_FALSE(restarted);
  EXPECT_TRUE(op->restart_due());
  ASSERT_TRUE(op->Step(0.0, &restarted).ok());
  EXPECT_TRUE(restarted);
  EXPECT_EQ(world.calls, 1);
  EXPECT_EQ(world.names, std::vector<std::string>{"avg"});
  EXPECT_DOUBLE_EQ(a[0], 5.0);  // (4 + 10 + 1) / 3
  EXPECT_DOUBLE_EQ(a[1], 29.0 / 3);
  EXPECT_DOUBLE_EQ(b[0], 34.0 / 3);
  EXPECT_DOUBLE_EQ(m[0], 41.0 / 3);  // (-3 + 40 + 4) / 3
  EXPECT_DOUBLE_EQ(m[1], 61.0 / 3);
  ASSERT_TRUE(op->Step(0.0, &restarted).ok());
  EXPECT_FALSE(restarted);
  EXPECT_EQ(world.calls, 1);
  EXPECT_EQ(op->step(), 3);
}

TEST(PeriodicAverager, StepMismatchFailsAndLeavesTheBuffers) {
  FakeWorld world;
  world.others = {{100.0}};
  world.other_step = 5;
  std::unique_ptr<PeriodicAverager> op;
  ASSERT_TRUE(PeriodicAverager::Create(world.Enqueue(), {"avg", {1, 0}}, &op).ok());
  std::vector<double> a = {1.0};
  ASSERT_TRUE(op->SetBuffers({View(a)}, {}).ok());
  Status st = op->Step(0.0, nullptr);  // this rank: step 1, the other: 5
  EXPECT_EQ(st.code(), StatusCode::kMismatch) << st.ToString();
  EXPECT_EQ(a[0], 1.0);
}

TEST(PeriodicAverager, RejectsBadBuffers) {
  FakeWorld world;
  std::unique_ptr<PeriodicAverager> op;
  ASSERT_TRUE(PeriodicAverager::Create(world.Enqueue(), {"avg", {1, 0}}, &op).ok());
  EXPECT_EQ(op->RestartNow(0.0).code(), StatusCode::kInvalidArgument);  // nothing registered
  std::vector<double> d(3);
  std::vector<float> f(3);
  EXPECT_FALSE(op->SetBuffers({View(d), View(f)}, {}).ok());  // two dtypes
  BufferView half = View(f);
  half.dtype = DataType::kFloat16;
  Status st = op->SetBuffers({half}, {});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("float32 and float64"), std::string::npos) << st.message();
  EXPECT_FALSE(op->SetBuffers({}, {}).ok());
  std::unique_ptr<PeriodicAverager> bad;
  EXPECT_FALSE(PeriodicAverager::Create(world.Enqueue(), {"avg", {0, 0}}, &bad).ok());
  EXPECT_FALSE(PeriodicAverager::Create(world.Enqueue(), {"", {1, 0}}, &bad).ok());
}

// GPU buffers: in a build with CUDA the kernels come with the CUDA plugin (built
// next to libbraid), which the op loads; without it they are a clear error. Either
// way nothing is sent before a step.
TEST(PeriodicAverager, GpuBuffersLoadTheKernelsOrAreAClearError) {
  ASSERT_EQ(RestartDeviceKernelsOrNull(), nullptr);
  FakeWorld world;
  std::unique_ptr<PeriodicAverager> op;
  ASSERT_TRUE(PeriodicAverager::Create(world.Enqueue(), {"gpu_op", {1, 0}}, &op).ok());
  std::vector<float> a(4);
  Status st = op->SetBuffers({View(a, /*device=*/0)}, {});
  if (BRAID_HAVE_CUDA) {
    EXPECT_TRUE(st.ok()) << st.ToString();
    EXPECT_NE(RestartDeviceKernelsOrNull(), nullptr);
    RegisterRestartDeviceKernels(nullptr);  // the other tests expect none
  } else {
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(st.message().find("no GPU kernels"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("gpu_op"), std::string::npos) << st.message();
  }
  EXPECT_EQ(world.calls, 0);
}

// SlowMo over three restarts against the equations, for the rank whose values are
// `x` while the two others hold x + 1 and x - 4 before each restart (so xbar = x - 1).
void RunSlowMo(bool nesterov, EnqueueFn enqueue, FakeWorld* world, int device) {
  const double alpha = 0.8, beta = 0.5;
  std::unique_ptr<SlowMo> op;
  SlowMoOptions o{"slowmo", {2, 0}, alpha, beta, nesterov};
  ASSERT_TRUE(SlowMo::Create(std::move(enqueue), o, &op).ok());
  std::vector<double> p1 = {1.0, 2.0}, p2 = {-3.0}, x_old(3), s(3, 0.0), mom = {6.0};
  ASSERT_TRUE(op->SetBuffers({View(p1, device), View(p2, device)}, {View(mom, device)}).ok());
  ASSERT_TRUE(op->SetSlowBuffers(View(x_old, device), View(s, device)).ok());
  ASSERT_TRUE(op->InitSlowParams().ok());
  EXPECT_EQ(x_old, (std::vector<double>{1.0, 2.0, -3.0}));
  std::vector<double> rx = {1.0, 2.0, -3.0}, rx_old = rx, rs(3, 0.0);
  for (int restart = 0; restart < 3; ++restart) {
    const double lr = 0.1 * (restart + 1);
    for (int i = 0; i < 3; ++i) rx[i] += 0.5 * (i + 1);  // the local steps
    p1 = {rx[0], rx[1]};
    p2 = {rx[2]};
    world->others.clear();
    world->others.push_back({rx[0] + 1, rx[1] + 1, rx[2] + 1, 0.0});
    world->others.push_back({rx[0] - 4, rx[1] - 4, rx[2] - 4, 0.0});
    ASSERT_TRUE(op->Step(lr, nullptr).ok());
    bool restarted = false;
    ASSERT_TRUE(op->Step(lr, &restarted).ok());
    ASSERT_TRUE(restarted);
    for (int i = 0; i < 3; ++i) {
      PaperSlowMo(rx[i] - 1, lr, alpha, beta, nesterov, &rx_old[i], &rs[i]);
      rx[i] = rx_old[i];
    }
    const std::vector<double> got = {p1[0], p1[1], p2[0]};
    for (int i = 0; i < 3; ++i) {
      EXPECT_NEAR(got[i], rx[i], 1e-12) << "restart " << restart << " element " << i;
      EXPECT_NEAR(x_old[i], rx_old[i], 1e-12);
      EXPECT_NEAR(s[i], rs[i], 1e-11);
    }
    EXPECT_NEAR(mom[0], 2.0, 1e-15);  // averaged along: (6 + 0 + 0) / 3
    mom[0] = 6.0;
  }
  EXPECT_EQ(world->calls, 3);
}

TEST(SlowMo, MatchesTheEquationsOverRestarts) {
  for (bool nesterov : {false, true}) {
    FakeWorld world;
    RunSlowMo(nesterov, world.Enqueue(), &world, kCpuDevice);
  }
}

TEST(SlowMo, RejectsBadSettings) {
  FakeWorld world;
  std::unique_ptr<SlowMo> op;
  EXPECT_FALSE(SlowMo::Create(world.Enqueue(), {"s", {1, 0}, 0.0, 0.5, false}, &op).ok());
  EXPECT_FALSE(SlowMo::Create(world.Enqueue(), {"s", {1, 0}, 1.0, -0.5, false}, &op).ok());
  ASSERT_TRUE(SlowMo::Create(world.Enqueue(), {"s", {1, 0}, 1.0, 0.5, false}, &op).ok());
  std::vector<double> p(3), x_old(2), s(2);
  ASSERT_TRUE(op->SetBuffers({View(p)}, {}).ok());
  ASSERT_TRUE(op->SetSlowBuffers(View(x_old), View(s)).ok());
  EXPECT_EQ(op->RestartNow(0.1).code(), StatusCode::kInvalidArgument);  // 2 != 3 elements
  std::vector<double> x_old3(3), s3(3);
  ASSERT_TRUE(op->SetSlowBuffers(View(x_old3), View(s3)).ok());
  EXPECT_EQ(op->RestartNow(0.0).code(), StatusCode::kInvalidArgument);  // lr must be > 0
  EXPECT_TRUE(op->RestartNow(0.1).ok());
}

// A kernel table that treats "device 0" pointers as host memory: the device path
// of the ops, run on the host.
struct HostAsDevice {
  static Status Allocate(int, int64_t bytes, void** m) {
    *m = new char[static_cast<size_t>(bytes)];
    ++allocations;
    return Status::OK();
  }
  static void Release(int, void* m) { delete[] static_cast<char*>(m); }
  static Status ScaleCopy(int, void* dst, const void* src, int64_t n, DataType, double f, void*) {
    for (int64_t i = 0; i < n; ++i)
      static_cast<double*>(dst)[i] = static_cast<const double*>(src)[i] * f;
    return Status::OK();
  }
  static Status Copy(int, void* dst, const void* src, int64_t bytes, void*) {
    std::memcpy(dst, src, static_cast<size_t>(bytes));
    return Status::OK();
  }
  static Status Update(int, const SlowMoSegment& g, const SlowMoCoefficients& c, void*) {
    ++updates;
    return SlowMoUpdateHost(g, c);
  }
  static inline int allocations = 0;
  static inline int updates = 0;
};

TEST(SlowMo, DevicePathThroughRegisteredKernels) {
  RestartDeviceKernels k;
  k.allocate = &HostAsDevice::Allocate;
  k.release = &HostAsDevice::Release;
  k.scale_copy = &HostAsDevice::ScaleCopy;
  k.copy_to_host = &HostAsDevice::Copy;
  k.copy_from_host = &HostAsDevice::Copy;
  k.slowmo_update = &HostAsDevice::Update;
  RegisterRestartDeviceKernels(&k);
  FakeWorld world;
  RunSlowMo(/*nesterov=*/true, world.Enqueue(), &world, /*device=*/0);
  RegisterRestartDeviceKernels(nullptr);
  EXPECT_EQ(HostAsDevice::allocations, 1);
  EXPECT_EQ(HostAsDevice::updates, 3 * 2);  // two parameter segments per restart
}

TEST(Stats, CountsPerCollectiveAndResets) {
  ResetStats();
  RecordCollective(Collective::kAllreduce, 100);
  RecordCollective(Collective::kAllreduce, 20);
  RecordCollective(Collective::kBroadcast, 8);
  EXPECT_EQ(ReadStats(Collective::kAllreduce).count, 2);
  EXPECT_EQ(ReadStats(Collective::kAllreduce).bytes, 120);
  EXPECT_EQ(ReadStats(Collective::kBroadcast).count, 1);
  EXPECT_EQ(ReadStats(Collective::kAllgather).count, 0);
  ResetStats();
  EXPECT_EQ(ReadStats(Collective::kAllreduce).count, 0);
  EXPECT_EQ(ReadStats(Collective::kAllreduce).bytes, 0);
}

}  // namespace
}  // namespace braid::restart
