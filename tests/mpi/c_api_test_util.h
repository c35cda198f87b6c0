// Shared helpers for the multi-process C API suites (tests/mpi/test_c_api_*.cc):
// dtype-generic host tensors with float16/bfloat16 conversions written
// independently of the library, input values whose reductions are exact, an
// RAII handle, a fixture that (re)initialises the engine with a given BRAID_*
// environment, and per-test unique tensor names. Every rank runs the same tests
// in the same order, so generated names agree across ranks and the collective
// init/shutdown calls happen on every rank alike.
#pragma once

#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "braid/braid.h"
#include "tests/mpi/world.h"

namespace ctu {

// Every dtype with arithmetic reductions (bool's are logical: tests of their own).
inline const std::vector<int>& AllDtypes() {
  static const std::vector<int> all = {BRAID_UINT8,    BRAID_INT8,    BRAID_INT16,
                                       BRAID_INT32,    BRAID_INT64,   BRAID_FLOAT16,
                                       BRAID_BFLOAT16, BRAID_FLOAT32, BRAID_FLOAT64};
  return all;
}
inline const std::vector<int>& FloatDtypes() {
  static const std::vector<int> all = {BRAID_FLOAT16, BRAID_BFLOAT16, BRAID_FLOAT32, BRAID_FLOAT64};
  return all;
}
inline const std::vector<int>& AllOps() {
  static const std::vector<int> all = {BRAID_SUM, BRAID_AVERAGE, BRAID_MIN, BRAID_MAX,
                                       BRAID_PRODUCT};
  return all;
}

inline size_t DtypeSize(int dtype) {
  static const size_t sizes[] = {1, 1, 4, 8, 2, 2, 4, 8, 2, 1};
  return sizes[dtype];
}
inline const char* DtypeName(int dtype) {
  static const char* names[] = {"uint8",    "int8",    "int32",   "int64", "float16",
                                "bfloat16", "float32", "float64", "int16", "bool"};
  return dtype >= 0 && dtype < 10 ? names[dtype] : "bad";
}
inline const char* OpName(int op) {
  static const char* names[] = {"sum", "average", "min", "max", "product"};
  return op >= 0 && op < 5 ? names[op] : "bad";
}
inline bool IsFloat(int dtype) {
  return dtype >= BRAID_FLOAT16 && dtype <= BRAID_FLOAT64;
}
inline bool IsSigned(int dtype) {
  return dtype != BRAID_UINT8 && dtype != BRAID_BOOL;
}

inline int MyWorldRank() {
  return braid_test::WorldRank();
}
using braid_test::WorldSize;

// IEEE binary16, round to nearest even: |f| = q * 2^(exp-10) with q < 2048 an
// integer; for normals the encoding is ((exp+15) << 10) + q - 1024, for
// subnormals (exp = -14) it is q, and a rounding carry into 2048 moves the
// exponent up by itself.
inline uint16_t FloatToHalf(float f) {
  const uint16_t sign = std::signbit(f) ? 0x8000u : 0u;
  const double a = std::fabs(static_cast<double>(f));
  if (std::isnan(f)) return 0x7e00u;
  if (a >= 65520.0) return sign | 0x7c00u;
  if (a == 0.0) return sign;
  int e = 0;
  std::frexp(a, &e);
  const int exp = std::max(e - 1, -14);
  const double q = std::nearbyint(std::ldexp(a, 10 - exp));
  return static_cast<uint16_t>(sign | (((exp + 14) << 10) + static_cast<int>(q)));
}

inline float HalfToFloat(uint16_t h) {
  const int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  const float v = exp == 31 ? (mant ? NAN : INFINITY)
                            : std::ldexp(static_cast<float>(exp ? (mant | 0x400) : mant),
                                         std::max(exp, 1) - 25);
  return (h & 0x8000u) ? -v : v;
}

inline uint16_t FloatToBf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

inline float Bf16ToFloat(uint16_t h) {
  const uint32_t x = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

template <class T>
double LoadAs(const void* p, int64_t i) {
  return static_cast<double>(static_cast<const T*>(p)[i]);
}
template <class T>
void StoreAs(void* p, int64_t i, double v) {
  static_cast<T*>(p)[i] = static_cast<T>(v);
}
template <float (*Widen)(uint16_t)>
double LoadHalf(const void* p, int64_t i) {
  return Widen(static_cast<const uint16_t*>(p)[i]);
}
template <uint16_t (*Narrow)(float)>
void StoreHalf(void* p, int64_t i, double v) {
  static_cast<uint16_t*>(p)[i] = Narrow(static_cast<float>(v));
}

// Reads / writes element i of a `dtype` array through a double (exact for the
// small integers and halves the tests use).
inline double LoadElem(int dtype, const void* p, int64_t i) {
  static double (*const load[])(const void*, int64_t) = {
      LoadAs<uint8_t>,       LoadAs<int8_t>,        LoadAs<int32_t>, LoadAs<int64_t>,
      LoadHalf<HalfToFloat>, LoadHalf<Bf16ToFloat>, LoadAs<float>,   LoadAs<double>,
      LoadAs<int16_t>,       LoadAs<uint8_t>};
  return load[dtype](p, i);
}
inline void StoreElem(int dtype, void* p, int64_t i, double v) {
  static void (*const store[])(void*, int64_t, double) = {
      StoreAs<uint8_t>,       StoreAs<int8_t>,        StoreAs<int32_t>, StoreAs<int64_t>,
      StoreHalf<FloatToHalf>, StoreHalf<FloatToBf16>, StoreAs<float>,   StoreAs<double>,
      StoreAs<int16_t>,       StoreAs<uint8_t>};
  store[dtype](p, i, v);
}

// A dense host tensor that owns its bytes and shape and describes itself as a
// braid_tensor_t.
class Tensor {
 public:
  Tensor(int dtype, std::vector<int64_t> shape, int device = BRAID_DEVICE_CPU)
      : dtype_(dtype), device_(device), shape_(std::move(shape)) {
    count_ = 1;
    for (int64_t d : shape_) count_ *= d;
    bytes_.resize(static_cast<size_t>(count_) * DtypeSize(dtype_));
  }
  int dtype() const { return dtype_; }
  int64_t count() const { return count_; }
  void* data() { return bytes_.data(); }
  const void* data() const { return bytes_.data(); }
  void Set(int64_t i, double v) { StoreElem(dtype_, bytes_.data(), i, v); }
  void Fill(const std::function<double(int64_t)>& f) {
    for (int64_t i = 0; i < count_; ++i) Set(i, f(i));
  }
  const braid_tensor_t* desc() {
    desc_.data = bytes_.data();
    desc_.dtype = dtype_;
    desc_.ndim = static_cast<int>(shape_.size());
    desc_.shape = shape_.data();
    desc_.device = device_;
    desc_.stream = nullptr;
    return &desc_;
  }

 private:
  int dtype_;
  int device_;
  std::vector<int64_t> shape_;
  int64_t count_;
  std::vector<unsigned char> bytes_;
  braid_tensor_t desc_{};
};

// Relative tolerance for a result that is rounded once in `dtype` (0: exact).
inline double RoundingTolerance(int dtype) {
  static const double tol[] = {0, 0, 0, 0, 1.0 / 1024, 1.0 / 128, 1.0 / (1 << 22), 1e-14, 0, 0};
  return tol[dtype];
}

// Compares `count` elements of a `dtype` array with `expected(i)`; reports the
// first mismatches.
inline ::testing::AssertionResult MatchesValues(int dtype, const void* data, int64_t count,
                                                const std::function<double(int64_t)>& expected,
                                                double rel_tol = 0.0) {
  int64_t bad = 0;
  std::ostringstream s;
  for (int64_t i = 0; i < count; ++i) {
    const double got = LoadElem(dtype, data, i), want = expected(i);
    const bool ok =
        rel_tol == 0.0 ? got == want : std::fabs(got - want) <= rel_tol * std::fabs(want) + 1e-30;
    if (ok) continue;
    if (bad < 5) s << " [" << i << "] got " << got << " want " << want << ";";
    ++bad;
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << bad << " of " << count << " " << DtypeName(dtype) << " elements differ (rank "
         << MyWorldRank() << "):" << s.str();
}
inline ::testing::AssertionResult MatchesValues(const Tensor& t,
                                                const std::function<double(int64_t)>& expected,
                                                double rel_tol = 0.0) {
  return MatchesValues(t.dtype(), t.data(), t.count(), expected, rel_tol);
}

// Small integers, exact in every dtype: in [-30, 30] (signed) or [0, 60]
// (uint8), so that a sum over 4 ranks fits int8/uint8 and bfloat16's 8 bits.
// int32/int64 add an offset so that their upper bits take part too.
inline double SmallValue(int dtype, int rank, int64_t i, int salt = 0) {
  const int64_t k = (i * 7 + rank * 13 + salt * 5) % 61;
  double v = IsSigned(dtype) ? static_cast<double>(k - 30) : static_cast<double>(k);
  if (dtype == BRAID_INT32) v += 1 << 20;
  if (dtype == BRAID_INT64) v += static_cast<double>(int64_t{1} << 40);
  return v;
}
// Factors for products: {-1, 1, 2} (signed) or {1, 2}, so |product| <= 16 at np 4.
inline double ProductValue(int dtype, int rank, int64_t i, int salt = 0) {
  if (IsSigned(dtype)) {
    static const double f[] = {-1, 1, 2};
    return f[(i + rank + salt) % 3];
  }
  return 1.0 + static_cast<double>((i + rank + salt) % 2);
}
inline double InputValue(int dtype, int op, int rank, int64_t i, int salt = 0) {
  return op == BRAID_PRODUCT ? ProductValue(dtype, rank, i, salt)
                             : SmallValue(dtype, rank, i, salt);
}

// The allreduce result expected for element i: (prescale * x_r) reduced over the
// ranks, then times postscale. Average is the sum divided by the rank count; on
// integers the division rounds toward zero (C++ integer division), as the engine
// does.
inline double ExpectedAllreduce(int dtype, int op, int size, int64_t i, double prescale,
                                double postscale, int salt = 0) {
  double acc = prescale * InputValue(dtype, op, 0, i, salt);
  for (int r = 1; r < size; ++r) {
    const double x = prescale * InputValue(dtype, op, r, i, salt);
    acc = op == BRAID_MIN       ? std::min(acc, x)
          : op == BRAID_MAX     ? std::max(acc, x)
          : op == BRAID_PRODUCT ? acc * x
                                : acc + x;
  }
  if (op == BRAID_AVERAGE) {
    if (!IsFloat(dtype)) return static_cast<double>(static_cast<int64_t>(acc) / size) * postscale;
    return acc / size * postscale;
  }
  return acc * postscale;
}

// Owns a braid_handle_t. Destruction frees it after waiting (bounded) for the
// operation, so a test that bails out early does not leave the engine writing
// into freed buffers.
class Handle {
 public:
  Handle() = default;
  ~Handle() { Reset(); }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  braid_handle_t* out() {
    Reset();
    return &h_;
  }
  braid_handle_t get() const { return h_; }
  explicit operator bool() const { return h_ != nullptr; }
  int Wait() { return braid_wait(h_); }
  std::string Error() const { return braid_handle_error(h_); }
  void Reset() {
    if (h_ == nullptr) return;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!braid_poll(h_) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    braid_handle_free(h_);
    h_ = nullptr;
  }

 private:
  braid_handle_t h_ = nullptr;
};

using EnvList = std::vector<std::pair<std::string, std::string>>;

// Resets the variables the tests manage (BRAID_LOG_LEVEL to its value at
// start-up), then sets `env`.
inline void ApplyEnv(const EnvList& env) {
  static const char* log_level = std::getenv("BRAID_LOG_LEVEL");
  static const std::string log_level_at_start = log_level ? log_level : "";
  if (log_level) setenv("BRAID_LOG_LEVEL", log_level_at_start.c_str(), 1);
  if (!log_level) unsetenv("BRAID_LOG_LEVEL");
  for (const char* name :
       {"BRAID_FUSION_THRESHOLD_BYTES", "BRAID_CYCLE_TIME_MS", "BRAID_IDLE_CYCLE_TIME_MS",
        "BRAID_CACHE_CAPACITY", "BRAID_STALL_WARNING_SECONDS", "BRAID_STALL_TIMEOUT_SECONDS",
        "BRAID_TIMELINE"})
    unsetenv(name);
  for (const auto& kv : env) setenv(kv.first.c_str(), kv.second.c_str(), 1);
}

// For a test that starts the engine itself: sets variables for a scope; at its
// end shuts the engine down (whatever started it with these settings) and
// unsets them, so that the fixtures start from a known state.
class ScopedEnv {
 public:
  explicit ScopedEnv(const EnvList& env) { ApplyEnv(env); }
  ~ScopedEnv() {
    braid_shutdown();
    ApplyEnv({});
  }
};

// A stall on one rank (a test that bailed out early) fails the others' waits
// after this long instead of hanging the run.
inline EnvList SafetyEnv() {
  return {{"BRAID_STALL_TIMEOUT_SECONDS", "60"}};
}

// Leaves the engine running with exactly `env` (plus SafetyEnv unless `env`
// overrides it): re-initialises only when the engine is down on some rank or was
// started with other settings. Collective.
//
// The ranks agree on whether to re-initialise: braid_is_initialized() is not the
// same on every rank at one moment. A braid_shutdown() on one rank stops every
// rank's coordinator at the next round, so a rank that has not yet reached its own
// braid_shutdown() already reads 0. Deciding alone, that rank would create an extra
// engine, and from then on the ranks' engine creations (MPI_Comm_dup on
// MPI_COMM_WORLD) would pair up across different tests. With the agreement, every
// rank decides before any rank can leave this function and shut down.
inline int EnsureEngine(const EnvList& env) {
  static EnvList current;
  static bool have_current = false;
  EnvList full = SafetyEnv();
  for (const auto& kv : env) {
    bool replaced = false;
    for (auto& f : full)
      if (f.first == kv.first) f.second = kv.second, replaced = true;
    if (!replaced) full.push_back(kv);
  }
  int restart = braid_is_initialized() && have_current && full == current ? 0 : 1;
  MPI_Allreduce(MPI_IN_PLACE, &restart, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
  if (!restart) return BRAID_OK;
  braid_shutdown();
  ApplyEnv(full);
  const int rc = braid_init();
  have_current = rc == BRAID_OK;
  current = full;
  return rc;
}

// A tensor name unique to this test and call; identical across ranks because
// every rank makes the same calls in the same order.
inline std::string UniqueName(const std::string& tag) {
  static int64_t counter = 0;
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::ostringstream s;
  if (info != nullptr) s << info->test_suite_name() << "." << info->name() << ".";
  s << tag << "#" << counter++;
  return s.str();
}

// Runs each test on an engine configured by Env() (restarting it only when the
// configuration changes). rank_/size_ come from braid itself.
class BraidTest : public ::testing::Test {
 protected:
  virtual EnvList Env() const { return {}; }
  void SetUp() override {
    ASSERT_EQ(EnsureEngine(Env()), BRAID_OK) << braid_last_error();
    rank_ = braid_rank();
    size_ = braid_size();
    ASSERT_GE(rank_, 0);
    ASSERT_GT(size_, 0);
  }
  int rank_ = -1;
  int size_ = 0;
};

#define CTU_REQUIRE_RANKS(n)                                                             \
  do {                                                                                   \
    if (braid_size() < (n))                                                              \
      GTEST_SKIP() << "needs at least " << (n) << " ranks (has " << braid_size() << ")"; \
  } while (0)

// Runs a small allreduce sum and checks it: the engine still works.
inline ::testing::AssertionResult EngineUsable() {
  const int size = braid_size();
  Tensor t(BRAID_FLOAT32, {5});
  t.Fill([](int64_t i) { return SmallValue(BRAID_FLOAT32, braid_rank(), i); });
  Handle h;
  const std::string name = UniqueName("usable");
  int rc = braid_allreduce_async(name.c_str(), t.desc(), t.data(), BRAID_SUM, 1.0, 1.0, h.out());
  if (rc != BRAID_OK) return ::testing::AssertionFailure() << "enqueue: " << braid_last_error();
  rc = h.Wait();
  if (rc != BRAID_OK)
    return ::testing::AssertionFailure() << "wait: rc " << rc << ": " << h.Error();
  return MatchesValues(
      t, [&](int64_t i) { return ExpectedAllreduce(BRAID_FLOAT32, BRAID_SUM, size, i, 1.0, 1.0); });
}

// Prints failures of ranks other than 0 (whose result printer mpi_main removes)
// to stderr, prefixed with the rank.
class RankFailurePrinter : public ::testing::EmptyTestEventListener {
  // The test's name is kept from OnTestStart: UnitTest::current_test_info() takes
  // a lock that gtest holds while it reports a part result.
  void OnTestStart(const ::testing::TestInfo& info) override {
    test_ = std::string(info.test_suite_name()) + "." + info.name();
  }
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (!r.failed() || MyWorldRank() == 0) return;
    std::fprintf(stderr, "[rank %d] FAILURE in %s at %s:%d\n%s\n", MyWorldRank(), test_.c_str(),
                 r.file_name() ? r.file_name() : "?", r.line_number(), r.message());
  }
  std::string test_;
};

// Shuts the engine down before main() finalises MPI.
class EngineShutdownEnvironment : public ::testing::Environment {
  void TearDown() override { braid_shutdown(); }
};

inline const bool kHooksInstalled = [] {
  ::testing::UnitTest::GetInstance()->listeners().Append(new RankFailurePrinter);
  ::testing::AddGlobalTestEnvironment(new EngineShutdownEnvironment);
  return true;
}();

}  // namespace ctu
