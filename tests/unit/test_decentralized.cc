// Decentralized momentum SGD in one process: the local step pass against the
// equations written out here, the checks of options and buffers, and the op end to
// end on n simulated ranks (one thread each, their requests meeting in a fake
// world) against every rank's values from Algorithm 2 of Yu, Jin, Yang (ICML
// 2019) computed with the dense W_t built here (decentralized_world.h); also the
// requests it sends (one per step, named per phase) and the device code path
// through registered kernel tables that work on host memory.
#include <gtest/gtest.h>

#include "braid/config.h"

#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <thread>

#include "decentralized_world.h"
#include "ops/gossip/device_kernels.h"
#include "ops/gossip/local_step.h"
#include "ops/restart/device_kernels.h"

namespace braid::gossip {
namespace {

using testing::DenseW;
using testing::FakeWorld;
using testing::Hyper;
using testing::Reference;

template <typename T>
BufferView View(std::vector<T>& v, int device = kCpuDevice) {
  BufferView b;
  b.data = v.data();
  b.count = static_cast<int64_t>(v.size());
  b.dtype = sizeof(T) == 8 ? DataType::kFloat64 : DataType::kFloat32;
  b.device = device;
  return b;
}

template <typename T>
void CheckLocalStep(bool nesterov, bool momentum, double tol) {
  const int64_t n = 37;
  const double lr = 0.05, beta = 0.8, wd = 0.01;
  std::vector<T> x(n), g(n), u(n);
  std::vector<double> rx(n), ru(n);
  for (int64_t i = 0; i < n; ++i) {
    x[i] = static_cast<T>(0.3 * (i % 5) - 0.4), g[i] = static_cast<T>(0.1 * (i % 7) - 0.2);
    u[i] = static_cast<T>(momentum ? 0.05 * (i % 3) : 0.0);
    rx[i] = x[i], ru[i] = u[i];
  }
  LocalStepSegment s{x.data(), g.data(), momentum ? u.data() : nullptr, n, View(x).dtype};
  ASSERT_TRUE(LocalStepHost(s, {lr, momentum ? beta : 0.0, wd, nesterov}).ok());
  for (int64_t i = 0; i < n; ++i) {
    const double b = momentum ? beta : 0.0;
    const double gi = static_cast<double>(g[i]) + wd * rx[i];
    const double ui = b * ru[i] + gi;                              // u~ = beta u + g
    const double xi = rx[i] - lr * (nesterov ? b * ui + gi : ui);  // Option II / I
    ASSERT_NEAR(x[i], xi, tol) << i;
    if (momentum) ASSERT_NEAR(u[i], ui, tol) << i;
  }
}

TEST(LocalStep, MatchesTheEquations) {
  for (bool nesterov : {false, true}) {
    for (bool momentum : {false, true}) {
      CheckLocalStep<double>(nesterov, momentum, 1e-15);
      CheckLocalStep<float>(nesterov, momentum, 1e-6);
    }
  }
  std::vector<int32_t> bad(3);
  LocalStepSegment s{bad.data(), bad.data(), nullptr, 3, DataType::kInt32};
  EXPECT_EQ(LocalStepHost(s, {}).code(), StatusCode::kInvalidArgument);
}

TEST(LocalStep, SquaredDistance) {
  std::vector<double> x = {1, 2, 3}, sum = {3, 3, 3};  // xbar = 1 at inv_ranks 1/3
  double d = -1;
  ASSERT_TRUE(SquaredDistanceHost(x.data(), sum.data(), 3, DataType::kFloat64, 1.0 / 3, &d).ok());
  EXPECT_NEAR(d, 0 + 1 + 4, 1e-15);
}

DecentralizedOptions Options(const std::string& kind, int n, int rank, const Hyper& h) {
  DecentralizedOptions o;
  o.name = "dsgd";
  o.rank = rank;
  o.size = n;
  GraphKind k;
  EXPECT_TRUE(ParseGraphKind(kind, &k).ok());
  EXPECT_TRUE(Graph::Make(k, n, &o.graph).ok());
  o.momentum = h.beta;
  o.nesterov = h.nesterov;
  o.mix_momentum = h.mix_momentum;
  o.average_period = h.average_period;
  o.weight_decay = h.weight_decay;
  return o;
}

TEST(Decentralized, RejectsBadOptions) {
  FakeWorld world(1);
  std::unique_ptr<DecentralizedSGD> op;
  auto create = [&](std::function<void(DecentralizedOptions*)> change) {
    DecentralizedOptions o = Options("ring", 4, 1, Hyper{});
    change(&o);
    return DecentralizedSGD::Create(world.Enqueue(0), o, &op);
  };
  EXPECT_TRUE(create([](DecentralizedOptions*) {}).ok());
  EXPECT_FALSE(create([](DecentralizedOptions* o) { o->name = ""; }).ok());
  EXPECT_FALSE(create([](DecentralizedOptions* o) { o->rank = 4; }).ok());
  EXPECT_FALSE(create([](DecentralizedOptions* o) { o->size = 5; }).ok());  // graph of 4
  EXPECT_FALSE(create([](DecentralizedOptions* o) { o->momentum = 1.0; }).ok());
  EXPECT_FALSE(create([](DecentralizedOptions* o) { o->momentum = -0.1; }).ok());
  EXPECT_FALSE(create([](DecentralizedOptions* o) { o->weight_decay = NAN; }).ok());
  Status st = create([](DecentralizedOptions* o) { o->average_period = -1; });
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("average_period"), std::string::npos) << st.message();
  EXPECT_FALSE(DecentralizedSGD::Create(nullptr, Options("ring", 4, 1, Hyper{}), &op).ok());
}

TEST(Decentralized, RejectsBadBuffers) {
  FakeWorld world(1);
  std::unique_ptr<DecentralizedSGD> op;
  ASSERT_TRUE(DecentralizedSGD::Create(world.Enqueue(0), Options("ring", 1, 0, Hyper{}), &op).ok());
  EXPECT_EQ(op->Step(0.1).code(), StatusCode::kInvalidArgument);  // nothing registered
  EXPECT_EQ(op->Mix().code(), StatusCode::kInvalidArgument);
  std::vector<double> x(4), g(4), u(4), short_g(3);
  std::vector<float> f(4);
  EXPECT_FALSE(op->SetBuffers({}, {}, {}).ok());
  EXPECT_FALSE(op->SetBuffers({View(x)}, {View(f)}, {}).ok());  // two dtypes
  Status st = op->SetBuffers({View(x)}, {View(short_g)}, {View(u)});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("grads buffer 0 has 3 elements"), std::string::npos) << st.message();
  EXPECT_FALSE(op->SetBuffers({View(x)}, {View(g), View(g)}, {}).ok());
  BufferView half = View(f);
  half.dtype = DataType::kFloat16;
  st = op->SetBuffers({half}, {}, {});
  EXPECT_NE(st.message().find("float32 and float64"), std::string::npos) << st.message();
  // Mix needs only the parameters; a step needs grads, and momentum when beta > 0.
  ASSERT_TRUE(op->SetBuffers({View(x)}, {}, {}).ok());
  EXPECT_TRUE(op->Mix().ok());
  st = op->Step(0.1);
  EXPECT_NE(st.message().find("gradients"), std::string::npos) << st.message();
  ASSERT_TRUE(op->SetBuffers({View(x)}, {View(g)}, {}).ok());
  st = op->Step(0.1);
  EXPECT_NE(st.message().find("no momentum buffers"), std::string::npos) << st.message();
  ASSERT_TRUE(op->SetBuffers({View(x)}, {View(g)}, {View(u)}).ok());
  EXPECT_FALSE(op->Step(-1.0).ok());
  EXPECT_FALSE(op->Step(INFINITY).ok());
  EXPECT_TRUE(op->Step(0.1).ok());
  EXPECT_EQ(op->step(), 2);  // the Mix and the Step
}

// Rank i's gradient at x: that of 0.5 * a_i * ||x - b_i||^2 plus a fixed "noise"
// term, different on every rank (a heterogeneous objective).
double Grad(int rank, int64_t t, size_t e, double x) {
  const double a = 0.5 + 0.25 * rank, b = std::sin(1.0 + rank + 0.5 * static_cast<double>(e));
  return a * (x - b) + 0.1 * std::cos(static_cast<double>(t) + 3.0 * rank + e);
}

double Start(int rank, size_t e) {
  return 0.2 * rank - 0.1 * static_cast<double>(e % 3);
}

// Runs `steps` steps of the op on n threads (two parameter buffers of 3 and 4
// elements per rank) and checks every rank against the reference after each.
template <typename T>
void RunWorld(const std::string& kind, int n, const Hyper& h, int steps, double tol,
              bool with_momentum = true, int device = kCpuDevice) {
  const double lr = 0.1;
  const size_t d = 7;
  Reference ref;
  ref.x.assign(n, std::vector<double>(d));
  ref.u.assign(n, std::vector<double>(d, 0.0));
  for (int i = 0; i < n; ++i)
    for (size_t e = 0; e < d; ++e) ref.x[i][e] = Start(i, e);
  // [t][rank] = x then u; sized here, so that each thread writes only its own slots.
  std::vector<std::vector<std::vector<double>>> got(steps, std::vector<std::vector<double>>(n));
  FakeWorld world(n);
  std::vector<Status> results(n);
  auto rank_main = [&](int rank) {
    std::unique_ptr<DecentralizedSGD> op;
    results[rank] = DecentralizedSGD::Create(world.Enqueue(rank), Options(kind, n, rank, h), &op);
    std::vector<T> x1(3), x2(4), g1(3), g2(4), u1(3, 0), u2(4, 0);
    for (size_t e = 0; e < d; ++e) (e < 3 ? x1[e] : x2[e - 3]) = static_cast<T>(Start(rank, e));
    if (results[rank].ok()) {
      std::vector<BufferView> u;
      if (with_momentum) u = {View(u1, device), View(u2, device)};
      results[rank] = op->SetBuffers({View(x1, device), View(x2, device)},
                                     {View(g1, device), View(g2, device)}, u);
    }
    for (int t = 0; t < steps && results[rank].ok(); ++t) {
      for (size_t e = 0; e < d; ++e) {
        T& x = e < 3 ? x1[e] : x2[e - 3];
        (e < 3 ? g1[e] : g2[e - 3]) = static_cast<T>(Grad(rank, t, e, static_cast<double>(x)));
      }
      results[rank] = op->Step(lr);
      std::vector<double> v(x1.begin(), x1.end());
      v.insert(v.end(), x2.begin(), x2.end());
      v.insert(v.end(), u1.begin(), u1.end());
      v.insert(v.end(), u2.begin(), u2.end());
      got[t][rank] = std::move(v);
    }
  };
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r) threads.emplace_back(rank_main, r);
  for (auto& th : threads) th.join();
  for (int r = 0; r < n; ++r) ASSERT_TRUE(results[r].ok()) << r << ": " << results[r].ToString();

  for (int t = 0; t < steps; ++t) {
    std::vector<std::vector<double>> g(n, std::vector<double>(d));
    for (int i = 0; i < n; ++i)
      for (size_t e = 0; e < d; ++e) g[i][e] = Grad(i, t, e, ref.x[i][e]);
    const bool average = h.average_period > 0 && (t + 1) % h.average_period == 0;
    ref.Step(g, lr, h, DenseW(kind, n, t), average && n > 1);
    for (int i = 0; i < n; ++i) {
      for (size_t e = 0; e < d; ++e) {
        ASSERT_NEAR(got[t][i][e], ref.x[i][e], tol) << kind << " t " << t << " rank " << i;
        if (with_momentum)
          ASSERT_NEAR(got[t][i][d + e], ref.u[i][e], tol) << kind << " t " << t << " rank " << i;
      }
    }
  }
}

TEST(DecentralizedWorld, RingHeavyBallMatchesAlgorithm2) {
  for (int n : {1, 2, 3, 4, 5}) RunWorld<double>("ring", n, Hyper{}, 12, 1e-12);
}

TEST(DecentralizedWorld, NesterovWithWeightDecay) {
  Hyper h;
  h.nesterov = true;
  h.weight_decay = 0.05;
  RunWorld<double>("ring", 5, h, 12, 1e-12);
  RunWorld<float>("ring", 4, h, 12, 2e-5);
}

TEST(DecentralizedWorld, OnePeerExponentialWithLocalMomentum) {
  Hyper h;
  h.mix_momentum = false;
  RunWorld<double>("one_peer_exponential", 4, h, 9, 1e-12);
  RunWorld<double>("one_peer_exponential", 3, h, 9, 1e-12);
}

TEST(DecentralizedWorld, PeriodicAverage) {
  Hyper h;
  h.average_period = 3;
  RunWorld<double>("ring", 5, h, 10, 1e-12);
  h.mix_momentum = false;
  RunWorld<double>("one_peer_exponential", 4, h, 10, 1e-12);
}

TEST(DecentralizedWorld, DPsgdWithoutMomentumBuffers) {
  Hyper h;
  h.beta = 0.0;
  RunWorld<double>("ring", 4, h, 8, 1e-12, /*with_momentum=*/false);
  RunWorld<double>("complete", 3, h, 8, 1e-12, /*with_momentum=*/false);
}

// Runs `body(rank)` on n threads; every rank's status must be OK.
void RunRanks(int n, const std::function<Status(int)>& body) {
  std::vector<Status> results(n);
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r) threads.emplace_back([&, r] { results[r] = body(r); });
  for (auto& th : threads) th.join();
  for (int r = 0; r < n; ++r) ASSERT_TRUE(results[r].ok()) << r << ": " << results[r].ToString();
}

// One request per step: the op's name on a static graph, one name per phase on a
// time-varying one, "/average" every K-th step; the mixing request carries x and
// u in one buffer and this rank's row of W_t.
TEST(DecentralizedRequests, OnePerStepNamedPerPhase) {
  for (const std::string kind : {"ring", "one_peer_exponential"}) {
    const int n = 4;
    FakeWorld world(n);
    Hyper h;
    h.average_period = 5;
    RunRanks(n, [&](int rank) {
      std::unique_ptr<DecentralizedSGD> op;
      BRAID_RETURN_IF_ERROR(
          DecentralizedSGD::Create(world.Enqueue(rank), Options(kind, n, rank, h), &op));
      std::vector<double> x(6, 1.0), g(6, 0.5), u(6, 0.0);
      BRAID_RETURN_IF_ERROR(op->SetBuffers({View(x)}, {View(g)}, {View(u)}));
      EXPECT_EQ(op->mixed_count(), 12);
      for (int t = 0; t < 6; ++t) BRAID_RETURN_IF_ERROR(op->Step(0.1));
      return Status::OK();
    });
    std::vector<std::string> want;
    for (int t = 0; t < 6; ++t) {
      if (t == 4) {
        want.push_back("dsgd/average");
      } else {
        want.push_back(kind == "ring" ? "dsgd" : "dsgd/phase" + std::to_string(t % 2));
      }
    }
    for (int r = 0; r < n; ++r) EXPECT_EQ(world.names(r), want) << kind << " rank " << r;
    // The last mix was at t = 5: W_5 (one-peer: phase 1, hop 2).
    const std::vector<RequestMeta> last = world.last_mix();
    ASSERT_EQ(last.size(), 4u);
    EXPECT_EQ(last[0].collective, Collective::kNeighborAllreduce);
    EXPECT_EQ(last[0].shape, std::vector<int64_t>{12});
    const std::vector<int32_t> ring0 = {1, 3}, peer0 = {2};
    EXPECT_EQ(last[0].recv_from, kind == "ring" ? ring0 : peer0) << kind;
    EXPECT_EQ(last[0].send_to, kind == "ring" ? ring0 : peer0) << kind;
  }
}

// Mixing alone keeps the average over the ranks (W doubly stochastic) and moves
// every rank towards it; Consensus reaches it exactly; the consensus distance is
// sqrt((1/n) sum_i ||x_i - xbar||^2) computed here.
TEST(DecentralizedRequests, MixKeepsTheAverageAndConsensusReachesIt) {
  const int n = 5;
  FakeWorld world(n);
  std::vector<std::vector<double>> x(n, std::vector<double>(4)), u = x;
  for (int r = 0; r < n; ++r)
    for (size_t e = 0; e < 4; ++e) x[r][e] = Start(r, e) * (e + 1), u[r][e] = 0.1 * r - e;
  const std::vector<std::vector<double>> x0 = x, u0 = u;
  auto distance = [&](const std::vector<std::vector<double>>& v) {
    const std::vector<double> mean = Reference::Averaged(v)[0];
    double s = 0;
    for (const auto& row : v)
      for (size_t e = 0; e < row.size(); ++e) s += (row[e] - mean[e]) * (row[e] - mean[e]);
    return std::sqrt(s / n);
  };
  std::vector<double> before(n), after(n), at_consensus(n);
  RunRanks(n, [&](int rank) {
    std::unique_ptr<DecentralizedSGD> op;
    BRAID_RETURN_IF_ERROR(
        DecentralizedSGD::Create(world.Enqueue(rank), Options("ring", n, rank, Hyper{}), &op));
    BRAID_RETURN_IF_ERROR(op->SetBuffers({View(x[rank])}, {}, {View(u[rank])}));
    BRAID_RETURN_IF_ERROR(op->ConsensusDistance(&before[rank]));
    for (int t = 0; t < 3; ++t) BRAID_RETURN_IF_ERROR(op->Mix());
    BRAID_RETURN_IF_ERROR(op->ConsensusDistance(&after[rank]));
    BRAID_RETURN_IF_ERROR(op->Consensus());
    EXPECT_EQ(op->step(), 3);
    return op->ConsensusDistance(&at_consensus[rank]);
  });
  auto ref_x = x0, ref_u = u0;
  for (int t = 0; t < 3; ++t) {
    ref_x = Reference::Mixed(DenseW("ring", n, t), ref_x);
    ref_u = Reference::Mixed(DenseW("ring", n, t), ref_u);
  }
  const std::vector<double> mean_x = Reference::Averaged(x0)[0],
                            mean_u = Reference::Averaged(u0)[0];
  for (int r = 0; r < n; ++r) {
    EXPECT_NEAR(before[r], distance(x0), 1e-12);
    EXPECT_NEAR(after[r], distance(ref_x), 1e-12);
    EXPECT_LT(after[r], before[r]);
    EXPECT_NEAR(at_consensus[r], 0.0, 1e-12);
    for (size_t e = 0; e < 4; ++e) {
      EXPECT_NEAR(x[r][e], mean_x[e], 1e-12);
      EXPECT_NEAR(u[r][e], mean_u[e], 1e-12);
    }
  }
}

// A kernel table that treats "device 0" pointers as host memory: the device path
// of the op (local step, packing, distance) runs on the host.
struct HostAsDevice {
  static Status Allocate(int, int64_t bytes, void** m) {
    *m = new char[static_cast<size_t>(bytes)];
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
  static Status Step(int, const LocalStepSegment& s, const LocalStepCoefficients& c, void*) {
    ++steps;
    return LocalStepHost(s, c);
  }
  static Status Distance(int, const void* x, const void* sum, int64_t n, DataType dtype, double inv,
                         double* out, void*) {
    return SquaredDistanceHost(x, sum, n, dtype, inv, out);
  }
  static inline std::atomic<int> steps{0};
};

TEST(DecentralizedDevice, DevicePathThroughRegisteredKernels) {
  restart::RestartDeviceKernels r;
  r.allocate = &HostAsDevice::Allocate;
  r.release = &HostAsDevice::Release;
  r.scale_copy = &HostAsDevice::ScaleCopy;
  r.copy_to_host = &HostAsDevice::Copy;
  r.copy_from_host = &HostAsDevice::Copy;
  GossipDeviceKernels g;
  g.local_step = &HostAsDevice::Step;
  g.squared_distance = &HostAsDevice::Distance;
  restart::RegisterRestartDeviceKernels(&r);
  RegisterGossipDeviceKernels(&g);
  Hyper h;
  h.nesterov = true;
  h.average_period = 4;
  RunWorld<double>("ring", 4, h, 9, 1e-12, true, /*device=*/0);
  restart::RegisterRestartDeviceKernels(nullptr);
  RegisterGossipDeviceKernels(nullptr);
  EXPECT_EQ(HostAsDevice::steps.load(), 4 * 9 * 2);  // two segments per rank and step
}

// Without a CUDA build, GPU buffers are a clear error naming the op; nothing is sent.
TEST(DecentralizedDevice, GpuBuffersWithoutKernelsAreAClearError) {
  if (BRAID_HAVE_CUDA) GTEST_SKIP() << "this build has the GPU kernels";
  FakeWorld world(1);
  std::unique_ptr<DecentralizedSGD> op;
  ASSERT_TRUE(DecentralizedSGD::Create(world.Enqueue(0), Options("ring", 1, 0, Hyper{}), &op).ok());
  std::vector<float> x(4);
  Status st = op->SetBuffers({View(x, /*device=*/0)}, {}, {});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("no GPU kernels"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("dsgd"), std::string::npos) << st.message();
  EXPECT_TRUE(world.names(0).empty());
}

}  // namespace
}  // namespace braid::gossip
