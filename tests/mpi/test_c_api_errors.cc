// Failures through the C API, and that the engine keeps working after each one:
//  - cross-rank mismatches (shape, allgather trailing dims, dtype, reduce op,
//    scale factors, root, device, collective): every rank's wait fails fast with
//    BRAID_ERR_MISMATCH and the same message naming the tensor; the buffers are
//    not touched;
//  - a name submitted twice while in flight: BRAID_ERR_DUPLICATE_NAME at once;
//  - arguments that are wrong on one rank alone: BRAID_ERR_INVALID_ARGUMENT at once;
//  - bad BRAID_* values: braid_init fails naming the variable;
//  - stall timeout: a rank never submits a name (fresh, or known to the response
//    cache): the others fail with BRAID_ERR_TIMEOUT naming the tensor and the
//    missing rank.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <functional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/mpi/c_api_test_util.h"

namespace {

using ctu::Handle;
using ctu::Tensor;
using Clock = std::chrono::steady_clock;

// Every rank's `s` (up to 4 KiB), in rank order, on rank 0 (empty elsewhere).
std::vector<std::string> GatherStrings(const std::string& s) {
  constexpr int kMax = 4096;
  const int n = ctu::WorldSize();
  std::vector<char> mine(kMax, '\0'), all(static_cast<size_t>(n) * kMax);
  std::copy_n(s.begin(), std::min<size_t>(s.size(), kMax - 1), mine.begin());
  MPI_Gather(mine.data(), kMax, MPI_CHAR, all.data(), kMax, MPI_CHAR, 0, MPI_COMM_WORLD);
  std::vector<std::string> out;
  for (int r = 0; r < n && ctu::MyWorldRank() == 0; ++r) out.emplace_back(&all[r * kMax]);
  return out;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

double SecondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Checks a failed operation's status and message on this rank, then (collective)
// that every rank in `participants` got the same message. Ranks outside it pass
// an empty message.
void ExpectSameFailure(int rc, const std::string& msg, int want_code, const std::string& name,
                       const std::vector<std::string>& keywords,
                       const std::function<bool(int)>& participates) {
  const int rank = braid_rank();
  if (participates(rank)) {
    EXPECT_EQ(rc, want_code) << "rank " << rank << ": " << msg;
    EXPECT_NE(msg.find(name), std::string::npos)
        << "the message does not name '" << name << "': " << msg;
    for (const std::string& k : keywords)
      EXPECT_NE(Lower(msg).find(k), std::string::npos) << "no '" << k << "' in: " << msg;
  }
  const std::vector<std::string> all = GatherStrings(participates(rank) ? msg : "");
  for (size_t r = 0; r < all.size(); ++r) {
    if (participates(static_cast<int>(r))) {
      EXPECT_EQ(all[r], all[0]) << "rank " << r << " and rank 0 report different messages";
    }
  }
}

// One mismatch: each rank's tensor comes from make(rank) and is submitted by
// submit(); every rank must fail fast with the same BRAID_ERR_MISMATCH message,
// its buffer untouched, and the engine must work afterwards.
void RunMismatch(const std::vector<std::string>& keywords,
                 const std::function<Tensor(int rank)>& make,
                 const std::function<int(const char*, Tensor*, braid_handle_t*)>& submit) {
  const int rank = braid_rank();
  const std::string name = ctu::UniqueName("mismatch");
  Tensor t = make(rank);
  t.Fill([&](int64_t i) { return ctu::SmallValue(t.dtype(), rank, i); });
  Handle h;
  const auto t0 = Clock::now();
  const int submitted = submit(name.c_str(), &t, h.out());
  EXPECT_EQ(submitted, BRAID_OK) << braid_last_error();
  const int rc = submitted == BRAID_OK ? h.Wait() : submitted;
  const std::string msg = submitted == BRAID_OK ? h.Error() : braid_last_error();
  if (submitted == BRAID_OK && rc != BRAID_OK) {
    EXPECT_EQ(std::string(braid_last_error()), msg) << "braid_last_error after the wait";
  }
  EXPECT_LT(SecondsSince(t0), 10.0) << "a mismatch must be reported fast";
  ExpectSameFailure(rc, msg, BRAID_ERR_MISMATCH, name, keywords, [](int) { return true; });
  EXPECT_TRUE(ctu::MatchesValues(t, [&](int64_t i) { return ctu::SmallValue(t.dtype(), rank, i); }))
      << "the buffer of a failed collective was modified";
  EXPECT_TRUE(ctu::EngineUsable());
}

std::function<int(const char*, Tensor*, braid_handle_t*)> Allreduce(
    std::function<int(int)> op, std::function<double(int)> prescale = [](int) { return 1.0; }) {
  return [=](const char* name, Tensor* t, braid_handle_t* h) {
    const int r = braid_rank();
    return braid_allreduce_async(name, t->desc(), t->data(), op(r), prescale(r), 1.0, h);
  };
}
std::function<int(const char*, Tensor*, braid_handle_t*)> Broadcast(std::function<int(int)> root) {
  return [=](const char* name, Tensor* t, braid_handle_t* h) {
    return braid_broadcast_async(name, t->desc(), root(braid_rank()), h);
  };
}
std::function<int(const char*, Tensor*, braid_handle_t*)> Allgather() {
  return [](const char* name, Tensor* t, braid_handle_t* h) {
    return braid_allgather_async(name, t->desc(), h);
  };
}
int Sum(int) {
  return BRAID_SUM;
}

class ErrorsTest : public ctu::BraidTest {};

TEST_F(ErrorsTest, MismatchedAllreduceShape) {
  CTU_REQUIRE_RANKS(2);
  RunMismatch(
      {"shape"}, [](int r) { return Tensor(BRAID_FLOAT32, {r == 0 ? 4 : 5}); }, Allreduce(Sum));
}

TEST_F(ErrorsTest, MismatchedBroadcastShapeSameElementCount) {
  CTU_REQUIRE_RANKS(2);
  RunMismatch(
      {"shape"},
      [](int r) {
        return Tensor(BRAID_INT32,
                      r == 0 ? std::vector<int64_t>{2, 3} : std::vector<int64_t>{3, 2});
      },
      Broadcast([](int) { return 0; }));
}

TEST_F(ErrorsTest, MismatchedAllgatherTrailingDims) {
  CTU_REQUIRE_RANKS(2);
  RunMismatch(
      {"shape"},
      [](int r) {
        return Tensor(BRAID_FLOAT64, {2, r == 0 ? 3 : 4});
      },
      Allgather());
  RunMismatch(
      {"shape"},
      [](int r) {
        return Tensor(BRAID_FLOAT64, r == 0 ? std::vector<int64_t>{2, 3} : std::vector<int64_t>{6});
      },
      Allgather());
}

TEST_F(ErrorsTest, MismatchedDtype) {
  CTU_REQUIRE_RANKS(2);
  RunMismatch(
      {"type"}, [](int r) { return Tensor(r == 0 ? BRAID_FLOAT32 : BRAID_INT32, {6}); },
      Allreduce(Sum));
}

TEST_F(ErrorsTest, MismatchedReduceOp) {
  CTU_REQUIRE_RANKS(2);
  RunMismatch(
      {"op"}, [](int) { return Tensor(BRAID_FLOAT32, {6}); },
      Allreduce([](int r) { return r == 0 ? BRAID_SUM : BRAID_MAX; }));
}

TEST_F(ErrorsTest, MismatchedScaleFactors) {
  CTU_REQUIRE_RANKS(2);
  RunMismatch(
      {"scale"}, [](int) { return Tensor(BRAID_FLOAT32, {6}); },
      Allreduce(Sum, [](int r) { return r == 0 ? 1.0 : 2.0; }));
}

TEST_F(ErrorsTest, MismatchedBroadcastRoot) {
  CTU_REQUIRE_RANKS(2);
  RunMismatch(
      {"root"}, [](int) { return Tensor(BRAID_FLOAT32, {6}); },
      Broadcast([](int r) { return r == 0 ? 0 : 1; }));
}

// Rank 1 claims its (host) buffer lives on CUDA device 0: the ranks must
// disagree before anything reads or writes it.
TEST_F(ErrorsTest, MismatchedDevice) {
  CTU_REQUIRE_RANKS(2);
  RunMismatch(
      {"device"}, [](int r) { return Tensor(BRAID_FLOAT32, {6}, r == 1 ? 0 : BRAID_DEVICE_CPU); },
      Allreduce(Sum));
}

TEST_F(ErrorsTest, DifferentCollectivesOnOneName) {
  CTU_REQUIRE_RANKS(2);
  auto reduce_or_bcast = [](const char* name, Tensor* t, braid_handle_t* h) {
    if (braid_rank() == 0)
      return braid_allreduce_async(name, t->desc(), t->data(), BRAID_SUM, 1.0, 1.0, h);
    return braid_broadcast_async(name, t->desc(), 0, h);
  };
  RunMismatch(
      {"allreduce", "broadcast"}, [](int) { return Tensor(BRAID_FLOAT32, {6}); }, reduce_or_bcast);
  auto gather_or_reduce = [](const char* name, Tensor* t, braid_handle_t* h) {
    if (braid_rank() == 0) return braid_allgather_async(name, t->desc(), h);
    return braid_allreduce_async(name, t->desc(), t->data(), BRAID_SUM, 1.0, 1.0, h);
  };
  RunMismatch(
      {"allgather", "allreduce"}, [](int) { return Tensor(BRAID_FLOAT32, {6}); }, gather_or_reduce);
}

// Rank 0 submits a name; the others hold theirs back until rank 0 has tried the
// name again, so the first operation is certainly still in flight then.
TEST_F(ErrorsTest, DuplicateNameInFlight) {
  CTU_REQUIRE_RANKS(2);
  const std::string name = ctu::UniqueName("dup");
  Tensor t(BRAID_FLOAT32, {8}), other(BRAID_FLOAT32, {8});
  t.Fill([&](int64_t i) { return ctu::SmallValue(BRAID_FLOAT32, rank_, i); });
  Handle first;
  if (rank_ == 0) {
    EXPECT_EQ(
        braid_allreduce_async(name.c_str(), t.desc(), t.data(), BRAID_SUM, 1.0, 1.0, first.out()),
        BRAID_OK)
        << braid_last_error();
    braid_handle_t second = nullptr;
    EXPECT_EQ(braid_allreduce_async(name.c_str(), other.desc(), other.data(), BRAID_SUM, 1.0, 1.0,
                                    &second),
              BRAID_ERR_DUPLICATE_NAME);
    EXPECT_NE(std::string(braid_last_error()).find(name), std::string::npos) << braid_last_error();
    EXPECT_EQ(braid_broadcast_async(name.c_str(), other.desc(), 0, &second),
              BRAID_ERR_DUPLICATE_NAME);
    EXPECT_NE(std::string(braid_last_error()), "");
    EXPECT_EQ(braid_poll(first.get()), 0) << "completed although no other rank submitted it";
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank_ != 0) {
    EXPECT_EQ(
        braid_allreduce_async(name.c_str(), t.desc(), t.data(), BRAID_SUM, 1.0, 1.0, first.out()),
        BRAID_OK)
        << braid_last_error();
  }
  ASSERT_EQ(first.Wait(), BRAID_OK) << first.Error();
  EXPECT_TRUE(ctu::MatchesValues(t, [&](int64_t i) {
    return ctu::ExpectedAllreduce(BRAID_FLOAT32, BRAID_SUM, size_, i, 1.0, 1.0);
  }));
}

// Wrong on this rank alone: refused at once, nothing enqueued (so the name can
// be used right afterwards).
TEST_F(ErrorsTest, InvalidArgumentsAreRefusedLocally) {
  const std::string name = ctu::UniqueName("bad");
  const char* n = name.c_str();
  Tensor t(BRAID_FLOAT32, {4});
  const int64_t neg_shape[] = {-3};
  braid_tensor_t d = *t.desc(), bad_dtype = d, bad_ndim = d, no_shape = d, neg_dim = d, no_data = d,
                 scalar = d;
  bad_dtype.dtype = 42;
  bad_ndim.ndim = -1;
  no_shape.shape = nullptr;
  neg_dim.shape = neg_shape;
  no_data.data = nullptr;
  scalar.ndim = 0;
  braid_handle_t h = nullptr;
  const void* out_data;
  int out_ndim;
  const int64_t* out_shape;
  struct Case {
    const char* what;
    std::function<int()> call;
  };
  const std::vector<Case> cases = {
      {"null name", [&] { return braid_allreduce_async(nullptr, &d, t.data(), 0, 1, 1, &h); }},
      {"null tensor", [&] { return braid_allreduce_async(n, nullptr, t.data(), 0, 1, 1, &h); }},
      {"null handle", [&] { return braid_allreduce_async(n, &d, t.data(), 0, 1, 1, nullptr); }},
      {"bad dtype", [&] { return braid_allreduce_async(n, &bad_dtype, t.data(), 0, 1, 1, &h); }},
      {"unknown op", [&] { return braid_allreduce_async(n, &d, t.data(), 9, 1, 1, &h); }},
      {"ndim -1", [&] { return braid_allreduce_async(n, &bad_ndim, t.data(), 0, 1, 1, &h); }},
      {"null shape", [&] { return braid_broadcast_async(n, &no_shape, 0, &h); }},
      {"negative dimension", [&] { return braid_allgather_async(n, &neg_dim, &h); }},
      {"null data", [&] { return braid_allreduce_async(n, &no_data, nullptr, 0, 1, 1, &h); }},
      {"NaN prescale", [&] { return braid_allreduce_async(n, &d, t.data(), 0, NAN, 1, &h); }},
      {"root = size", [&] { return braid_broadcast_async(n, &d, braid_size(), &h); }},
      {"root = -1", [&] { return braid_broadcast_async(n, &d, -1, &h); }},
      {"allgather of a scalar", [&] { return braid_allgather_async(n, &scalar, &h); }},
      {"wait on NULL", [&] { return braid_wait(nullptr); }},
      {"output of NULL",
       [&] { return braid_handle_output(nullptr, &out_data, &out_ndim, &out_shape); }},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(c.call(), BRAID_ERR_INVALID_ARGUMENT) << c.what;
    EXPECT_STRNE(braid_last_error(), "") << c.what;
  }
  // The name was never enqueued.
  t.Fill([&](int64_t i) { return ctu::SmallValue(BRAID_FLOAT32, rank_, i); });
  Handle ok;
  ASSERT_EQ(braid_allreduce_async(n, t.desc(), t.data(), BRAID_SUM, 1, 1, ok.out()), BRAID_OK)
      << braid_last_error();
  ASSERT_EQ(ok.Wait(), BRAID_OK) << ok.Error();
  EXPECT_TRUE(ctu::MatchesValues(t, [&](int64_t i) {
    return ctu::ExpectedAllreduce(BRAID_FLOAT32, BRAID_SUM, size_, i, 1.0, 1.0);
  }));
}

TEST_F(ErrorsTest, BadEnvironmentValuesFailInit) {
  const ctu::EnvList bad = {
      {"BRAID_CACHE_CAPACITY", "abc"},        {"BRAID_CACHE_CAPACITY", "12abc"},
      {"BRAID_FUSION_THRESHOLD_BYTES", "-5"}, {"BRAID_CYCLE_TIME_MS", "fast"},
      {"BRAID_STALL_TIMEOUT_SECONDS", "-1"},  {"BRAID_STALL_WARNING_SECONDS", "nan"},
      {"BRAID_LOG_LEVEL", "loudest"},
  };
  ASSERT_EQ(braid_shutdown(), BRAID_OK);
  for (const auto& kv : bad) {
    SCOPED_TRACE(kv.first + "=" + kv.second);
    ctu::ScopedEnv env({kv});
    EXPECT_EQ(braid_init(), BRAID_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(braid_last_error()).find(kv.first), std::string::npos)
        << "the message does not name the variable: " << braid_last_error();
    EXPECT_EQ(braid_is_initialized(), 0);
    EXPECT_EQ(braid_rank(), -1);
  }
  ASSERT_EQ(ctu::EnsureEngine({}), BRAID_OK) << braid_last_error();
  EXPECT_TRUE(ctu::EngineUsable());
}

// Stall timeout 1 s: rank 1 leaves out a name the others submit.
class StallTest : public ctu::BraidTest {
 protected:
  // 2 s: the timeout also bounds how long one negotiation round may take (the
  // watchdog), and under ThreadSanitizer on two busy cores rank 1's coordinator,
  // competing with its own main thread polling in MPI_Barrier, has once taken 1.1 s.
  ctu::EnvList Env() const override {
    return {{"BRAID_STALL_TIMEOUT_SECONDS", "2"}, {"BRAID_STALL_WARNING_SECONDS", "0.5"}};
  }

  // Every rank but 1 submits `name`; they must all fail with BRAID_ERR_TIMEOUT
  // after about the timeout, naming the tensor and rank 1, with one message.
  void ExpectTimeoutWithoutRankOne(const std::string& name) {
    Tensor t(BRAID_FLOAT32, {4});
    t.Fill([&](int64_t i) { return ctu::SmallValue(BRAID_FLOAT32, rank_, i); });
    int rc = BRAID_OK;
    std::string msg;
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank_ != 1) {
      Handle h;
      const auto t0 = Clock::now();
      EXPECT_EQ(braid_allreduce_async(name.c_str(), t.desc(), t.data(), BRAID_SUM, 1, 1, h.out()),
                BRAID_OK)
          << braid_last_error();
      rc = h.Wait();
      msg = h.Error();
      const double waited = SecondsSince(t0);
      EXPECT_GE(waited, 1.5) << "failed before the timeout: " << msg;
      EXPECT_LT(waited, 8.0) << "the timeout took too long";
      static const std::regex missing_rank_one(R"(ranks?\s*:?\s*\[?\s*(\d+\s*,\s*)*1\b)",
                                               std::regex::icase);
      EXPECT_TRUE(std::regex_search(msg, missing_rank_one)) << "rank 1 not named: " << msg;
      EXPECT_TRUE(ctu::MatchesValues(
          t, [&](int64_t i) { return ctu::SmallValue(BRAID_FLOAT32, rank_, i); }));
    }
    ExpectSameFailure(rc, msg, BRAID_ERR_TIMEOUT, name, {}, [](int r) { return r != 1; });
    // Rank 1 would otherwise submit the next name a timeout ahead of the others.
    MPI_Barrier(MPI_COMM_WORLD);
    EXPECT_TRUE(ctu::EngineUsable());
  }

  void AllreduceOnce(const std::string& name, int salt) {
    Tensor t(BRAID_INT32, {9});
    t.Fill([&](int64_t i) { return ctu::SmallValue(BRAID_INT32, rank_, i, salt); });
    Handle h;
    ASSERT_EQ(braid_allreduce_async(name.c_str(), t.desc(), t.data(), BRAID_SUM, 1, 1, h.out()),
              BRAID_OK)
        << braid_last_error();
    ASSERT_EQ(h.Wait(), BRAID_OK) << h.Error();
    EXPECT_TRUE(ctu::MatchesValues(t, [&](int64_t i) {
      return ctu::ExpectedAllreduce(BRAID_INT32, BRAID_SUM, size_, i, 1.0, 1.0, salt);
    }));
  }
};

TEST_F(StallTest, MissingRankTimesOut) {
  CTU_REQUIRE_RANKS(2);
  ExpectTimeoutWithoutRankOne(ctu::UniqueName("never.on.rank1"));
}

// The name went through negotiation and the response cache once; the second
// time rank 1 leaves it out. Afterwards the name works again.
TEST_F(StallTest, MissingRankTimesOutOnCachedName) {
  CTU_REQUIRE_RANKS(2);
  const std::string name = ctu::UniqueName("cached");
  AllreduceOnce(name, 0);
  AllreduceOnce(name, 1);
  ExpectTimeoutWithoutRankOne(name);
  AllreduceOnce(name, 2);
}

// A rank that is late by less than the timeout is waited for.
TEST_F(StallTest, LateRankWithinTimeoutSucceeds) {
  CTU_REQUIRE_RANKS(2);
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank_ == 1) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  AllreduceOnce(ctu::UniqueName("late"), 3);
}

}  // namespace
