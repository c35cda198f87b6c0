// The restart ops through the C API on every rank count: local SGD's average and
// SlowMo's outer step against the equations (every rank can compute every rank's
// values), one allreduce per restart whatever the fusion threshold (braid_stats),
// and the same clear error on every rank when the ranks are not at the same step or
// their buffers differ in size, with the engine usable afterwards.
#include <cmath>
#include <string>
#include <vector>

#include "c_api_test_util.h"

namespace {

using ctu::BraidTest;
using ctu::EnvList;

// Owns a braid_restart_t.
struct Op {
  braid_restart_t op = nullptr;
  ~Op() { braid_restart_free(op); }
};

// A float64 host vector described as a braid_tensor_t.
struct Vec {
  std::vector<double> v;
  int64_t n = 0;
  explicit Vec(int64_t count, double fill = 0.0) : v(static_cast<size_t>(count), fill), n(count) {}
  braid_tensor_t desc() {
    n = static_cast<int64_t>(v.size());
    return braid_tensor_t{v.data(), BRAID_FLOAT64, 1, &n, BRAID_DEVICE_CPU, nullptr};
  }
};

// Rank r's value of element i before a restart.
double Value(int r, int64_t i, int salt) {
  return 0.5 * r + 0.25 * static_cast<double>((i * 3 + salt) % 7) - 1.0;
}
double Mean(int size, int64_t i, int salt) {
  double sum = 0;
  for (int r = 0; r < size; ++r) sum += Value(r, i, salt);
  return sum / size;
}

class RestartTest : public BraidTest {
 protected:
  // A small fusion buffer: the packed restart buffer exceeds it, and still goes as one.
  EnvList Env() const override { return {{"BRAID_FUSION_THRESHOLD_BYTES", "64"}}; }
};

TEST_F(RestartTest, LocalSgdAveragesEveryPeriodInOneAllreduce) {
  Op op;
  const std::string name = ctu::UniqueName("local_sgd");
  ASSERT_EQ(braid_local_sgd_create(name.c_str(), 3, 1, &op.op), BRAID_OK) << braid_last_error();
  Vec a(40), b(3), m(40);
  braid_tensor_t params[2] = {a.desc(), b.desc()};
  braid_tensor_t averaged[1] = {m.desc()};
  ASSERT_EQ(braid_restart_set_buffers(op.op, params, 2, averaged, 1), BRAID_OK)
      << braid_last_error();
  ASSERT_EQ(braid_reset_stats(), BRAID_OK);
  int restarts = 0;
  for (int step = 1; step <= 7; ++step) {  // warm-up 1, period 3: restarts at 4 and 7
    for (int64_t i = 0; i < 40; ++i)
      a.v[i] = Value(rank_, i, step), m.v[i] = Value(rank_, i, -step);
    for (int64_t i = 0; i < 3; ++i) b.v[i] = Value(rank_, i + 40, step);
    EXPECT_EQ(braid_restart_due(op.op), step == 4 || step == 7 ? 1 : 0) << step;
    int restarted = -1;
    ASSERT_EQ(braid_restart_step(op.op, 0.0, &restarted), BRAID_OK) << braid_last_error();
    ASSERT_EQ(restarted, step == 4 || step == 7 ? 1 : 0) << "step " << step;
    restarts += restarted;
    for (int64_t i = 0; i < 40; ++i) {
      const double want_a = restarted ? Mean(size_, i, step) : Value(rank_, i, step);
      const double want_m = restarted ? Mean(size_, i, -step) : Value(rank_, i, -step);
      ASSERT_NEAR(a.v[i], want_a, 1e-14) << "step " << step << " element " << i;
      ASSERT_NEAR(m.v[i], want_m, 1e-14) << "step " << step << " element " << i;
    }
    for (int64_t i = 0; i < 3; ++i)
      ASSERT_NEAR(b.v[i], restarted ? Mean(size_, i + 40, step) : Value(rank_, i + 40, step),
                  1e-14);
  }
  int64_t count = -1, bytes = -1;
  ASSERT_EQ(braid_stats(BRAID_ALLREDUCE, &count, &bytes), BRAID_OK);
  EXPECT_EQ(count, restarts);
  EXPECT_EQ(bytes, restarts * (83 + 33) * 8);  // 83 elements + the agreement slots
  int64_t step = 0;
  ASSERT_EQ(braid_restart_get_step(op.op, &step), BRAID_OK);
  EXPECT_EQ(step, 7);
}

// SlowMo's outer step (and BMUF's Nesterov form) against the equations, over three
// restarts with a changing learning rate.
void RunSlowMo(int rank, int size, double alpha, double beta, int nesterov) {
  Op op;
  const std::string name = ctu::UniqueName("slowmo");
  ASSERT_EQ(braid_slowmo_create(name.c_str(), 2, alpha, beta, nesterov, &op.op), BRAID_OK)
      << braid_last_error();
  const int64_t n = 11;
  Vec x(n, 0.0), x_old(n), s(n, 0.0);
  for (int64_t i = 0; i < n; ++i) x.v[i] = Mean(size, i, 0);  // the common start
  braid_tensor_t params[1] = {x.desc()};
  ASSERT_EQ(braid_restart_set_buffers(op.op, params, 1, nullptr, 0), BRAID_OK);
  braid_tensor_t xo = x_old.desc(), sm = s.desc();
  ASSERT_EQ(braid_restart_set_slow_buffers(op.op, &xo, &sm), BRAID_OK) << braid_last_error();
  ASSERT_EQ(braid_restart_init_slow_params(op.op), BRAID_OK) << braid_last_error();
  std::vector<double> rx_old = x.v, rs(n, 0.0);
  for (int k = 1; k <= 3; ++k) {
    const double lr = 0.1 * k;
    for (int64_t i = 0; i < n; ++i) x.v[i] = Value(rank, i, k);  // where the local steps led
    ASSERT_EQ(braid_restart_step(op.op, lr, nullptr), BRAID_OK);
    int restarted = 0;
    ASSERT_EQ(braid_restart_step(op.op, lr, &restarted), BRAID_OK) << braid_last_error();
    ASSERT_EQ(restarted, 1);
    for (int64_t i = 0; i < n; ++i) {
      // SlowMo's Algorithm 1 from the block's start rx_old = x_{t,0}; Nesterov steps
      // along beta * u_{t+1} + (x_{t,0} - xbar) / lr; every rank restarts at x_{t+1,0}.
      const double slow_grad = (rx_old[i] - Mean(size, i, k)) / lr;
      rs[i] = beta * rs[i] + slow_grad;
      rx_old[i] -= alpha * lr * (nesterov ? beta * rs[i] + slow_grad : rs[i]);
      ASSERT_NEAR(x.v[i], rx_old[i], 1e-12) << "restart " << k << " element " << i;
      ASSERT_NEAR(x_old.v[i], rx_old[i], 1e-12);
      ASSERT_NEAR(s.v[i], rs[i], 1e-11);
    }
  }
}

TEST_F(RestartTest, SlowMoMatchesTheEquations) {
  RunSlowMo(rank_, size_, 1.0, 0.5, 0);
  RunSlowMo(rank_, size_, 0.7, 0.9, 1);  // BMUF with Nesterov block momentum
}

TEST_F(RestartTest, SlowMoWithoutMomentumIsTheAverage) {
  Op op;
  const std::string name = ctu::UniqueName("slowmo0");
  ASSERT_EQ(braid_slowmo_create(name.c_str(), 1, 1.0, 0.0, 0, &op.op), BRAID_OK);
  Vec x(5), x_old(5), s(5, 0.0);
  braid_tensor_t params[1] = {x.desc()};
  braid_tensor_t xo = x_old.desc(), sm = s.desc();
  ASSERT_EQ(braid_restart_set_buffers(op.op, params, 1, nullptr, 0), BRAID_OK);
  ASSERT_EQ(braid_restart_set_slow_buffers(op.op, &xo, &sm), BRAID_OK);
  ASSERT_EQ(braid_restart_init_slow_params(op.op), BRAID_OK);
  for (int64_t i = 0; i < 5; ++i) x.v[i] = Value(rank_, i, 3);
  ASSERT_EQ(braid_restart_step(op.op, 0.05, nullptr), BRAID_OK) << braid_last_error();
  for (int64_t i = 0; i < 5; ++i) EXPECT_NEAR(x.v[i], Mean(size_, i, 3), 1e-14) << i;
}

TEST_F(RestartTest, RanksAtDifferentStepsFailEverywhere) {
  CTU_REQUIRE_RANKS(2);
  Op op;
  const std::string name = ctu::UniqueName("diverged");
  ASSERT_EQ(braid_local_sgd_create(name.c_str(), 1, 0, &op.op), BRAID_OK);
  Vec a(4, 1.0 + rank_);
  braid_tensor_t params[1] = {a.desc()};
  ASSERT_EQ(braid_restart_set_buffers(op.op, params, 1, nullptr, 0), BRAID_OK);
  ASSERT_EQ(braid_restart_set_step(op.op, rank_ == 0 ? 4 : 6), BRAID_OK);
  EXPECT_EQ(braid_restart_step(op.op, 0.0, nullptr), BRAID_ERR_MISMATCH);
  EXPECT_NE(std::string(braid_last_error()).find("not at the same step"), std::string::npos)
      << braid_last_error();
  for (double v : a.v) EXPECT_EQ(v, 1.0 + rank_);  // left as they were
  EXPECT_TRUE(ctu::EngineUsable());
}

TEST_F(RestartTest, BuffersOfDifferentSizesFailEverywhere) {
  CTU_REQUIRE_RANKS(2);
  Op op;
  const std::string name = ctu::UniqueName("sizes");
  ASSERT_EQ(braid_local_sgd_create(name.c_str(), 1, 0, &op.op), BRAID_OK);
  Vec a(rank_ == 0 ? 4 : 5, 1.0);
  braid_tensor_t params[1] = {a.desc()};
  ASSERT_EQ(braid_restart_set_buffers(op.op, params, 1, nullptr, 0), BRAID_OK);
  EXPECT_EQ(braid_restart_step(op.op, 0.0, nullptr), BRAID_ERR_MISMATCH);
  EXPECT_NE(std::string(braid_last_error()).find(name), std::string::npos) << braid_last_error();
  EXPECT_TRUE(ctu::EngineUsable());
}

TEST_F(RestartTest, ArgumentErrors) {
  EXPECT_EQ(braid_restart_step(nullptr, 0.0, nullptr), BRAID_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(braid_restart_due(nullptr), -1);
  Op op;
  EXPECT_EQ(braid_local_sgd_create("x", 0, 0, &op.op), BRAID_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(braid_slowmo_create("x", 1, 1.0, -1.0, 0, &op.op), BRAID_ERR_INVALID_ARGUMENT);
  ASSERT_EQ(braid_local_sgd_create("restart.args", 1, 0, &op.op), BRAID_OK);
  Vec a(2);
  braid_tensor_t t = a.desc();
  EXPECT_EQ(braid_restart_set_slow_buffers(op.op, &t, &t), BRAID_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(braid_restart_step(op.op, 0.0, nullptr), BRAID_ERR_INVALID_ARGUMENT);  // no buffers
  t.dtype = BRAID_FLOAT16;
  EXPECT_EQ(braid_restart_set_buffers(op.op, &t, 1, nullptr, 0), BRAID_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(braid_last_error()).find("float32 and float64"), std::string::npos);
  EXPECT_EQ(braid_stats(42, nullptr, nullptr), BRAID_ERR_INVALID_ARGUMENT);
}

}  // namespace
