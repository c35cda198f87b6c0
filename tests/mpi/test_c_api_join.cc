// braid_join through the C API.
//
// One rank joins first while the others keep working: their allreduces (sum and
// average, float32 and int32, one element up to the ring's 4 MiB, alone and
// fused, names fresh and already in the response cache) must count the joined
// rank as a zero (average: the others' sum divided by the full size), their
// allgathers must contain no rows from it, a barrier counts it as arrived, a
// broadcast fails with the same message on every submitting rank, and a mismatch
// names only the ranks that submitted. The last joiner is made deterministic: it
// joins only after an allreduce of ones has shown that it alone still
// contributes (that allreduce cannot complete before the others have joined).
// Every rank's join then returns that rank. Also: everyone joins at once (np 1:
// rank 0), two joins in one engine lifetime, names in the cache not waiting for
// the cache patience, and a shutdown while a join is pending.
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/mpi/c_api_test_util.h"

namespace {

using ctu::Handle;
using ctu::Tensor;
using Clock = std::chrono::steady_clock;

// One element past 4 MiB of float32 / int32: reduced by the ring.
constexpr int64_t kRingElems = (int64_t{1} << 20) + 3;

// The allreduce result when the ranks in `joined` contribute zeros.
double ExpectedJoined(int dtype, int op, int size, const std::vector<bool>& joined, int64_t i,
                      int salt) {
  double sum = 0;
  for (int r = 0; r < size; ++r)
    if (!joined[r]) sum += ctu::SmallValue(dtype, r, i, salt);
  if (op != BRAID_AVERAGE) return sum;
  if (!ctu::IsFloat(dtype)) return static_cast<double>(static_cast<int64_t>(sum) / size);
  return sum / size;
}

struct ReduceCase {
  int dtype;
  int op;
  int64_t count;
};

std::vector<ReduceCase> Cases() {
  std::vector<ReduceCase> cases;
  for (int dtype : {BRAID_FLOAT32, BRAID_INT32})
    for (int op : {BRAID_SUM, BRAID_AVERAGE})
      for (int64_t count : {int64_t{1}, int64_t{17}, int64_t{4099}, kRingElems})
        cases.push_back({dtype, op, count});
  return cases;
}

std::string CaseName(const std::string& tag, const ReduceCase& c) {
  return "join." + tag + "." + ctu::DtypeName(c.dtype) + "." + ctu::OpName(c.op) + "." +
         std::to_string(c.count);
}

// Starts the allreduce of `c` named `name` on `t` (filled for this rank and `salt`).
int Start(const std::string& name, const ReduceCase& c, int salt, Tensor* t, Handle* h) {
  const int rank = braid_rank();
  t->Fill([&](int64_t i) { return ctu::SmallValue(c.dtype, rank, i, salt); });
  return braid_allreduce_async(name.c_str(), t->desc(), t->data(), c.op, 1.0, 1.0, h->out());
}

::testing::AssertionResult Matches(const Tensor& t, const ReduceCase& c,
                                   const std::vector<bool>& joined, int salt) {
  const int size = braid_size();
  return ctu::MatchesValues(
      t, [&](int64_t i) { return ExpectedJoined(c.dtype, c.op, size, joined, i, salt); },
      c.op == BRAID_AVERAGE ? ctu::RoundingTolerance(c.dtype) : 0.0);
}

// Every case alone (waited one at a time), named `tag`.
void ReduceEachAlone(const std::string& tag, const std::vector<bool>& joined, int salt) {
  for (const ReduceCase& c : Cases()) {
    Tensor t(c.dtype, {c.count});
    Handle h;
    ASSERT_EQ(Start(CaseName(tag, c), c, salt, &t, &h), BRAID_OK) << braid_last_error();
    ASSERT_EQ(h.Wait(), BRAID_OK) << h.Error();
    EXPECT_TRUE(Matches(t, c, joined, salt)) << CaseName(tag, c);
  }
}

// Small tensors of two kinds submitted together, so that they are fused.
void ReduceFused(const std::string& tag, const std::vector<bool>& joined, int salt) {
  std::vector<ReduceCase> cases;
  for (int k = 0; k < 8; ++k) {
    cases.push_back({BRAID_FLOAT32, BRAID_SUM, 33 + k});
    cases.push_back({BRAID_INT32, BRAID_AVERAGE, 40 + k});
  }
  std::vector<std::unique_ptr<Tensor>> ts;
  std::vector<Handle> hs(cases.size());
  for (size_t k = 0; k < cases.size(); ++k) {
    ts.push_back(std::make_unique<Tensor>(cases[k].dtype, std::vector<int64_t>{cases[k].count}));
    ASSERT_EQ(Start(CaseName(tag + ".fused", cases[k]), cases[k], salt, ts[k].get(), &hs[k]),
              BRAID_OK)
        << braid_last_error();
  }
  for (size_t k = 0; k < cases.size(); ++k) {
    ASSERT_EQ(hs[k].Wait(), BRAID_OK) << hs[k].Error();
    EXPECT_TRUE(Matches(*ts[k], cases[k], joined, salt)) << CaseName(tag + ".fused", cases[k]);
  }
}

// Rank r gathers r+1 rows of 3 int32; joined ranks add no rows.
void GatherWithJoined(const std::string& name, const std::vector<bool>& joined) {
  const int rank = braid_rank(), size = braid_size();
  Tensor in(BRAID_INT32, {rank + 1, 3});
  in.Fill([&](int64_t j) { return 1000.0 * rank + static_cast<double>(j); });
  Handle h;
  ASSERT_EQ(braid_allgather_async(name.c_str(), in.desc(), h.out()), BRAID_OK);
  ASSERT_EQ(h.Wait(), BRAID_OK) << h.Error();
  std::vector<double> want;
  for (int r = 0; r < size; ++r)
    for (int64_t j = 0; j < 3 * (r + 1) && !joined[r]; ++j) want.push_back(1000.0 * r + j);
  const void* data = nullptr;
  int ndim = 0;
  const int64_t* shape = nullptr;
  ASSERT_EQ(braid_handle_output(h.get(), &data, &ndim, &shape), BRAID_OK);
  ASSERT_EQ(ndim, 2);
  EXPECT_EQ(shape[0] * shape[1], static_cast<int64_t>(want.size()));
  EXPECT_EQ(shape[1], 3);
  EXPECT_TRUE(ctu::MatchesValues(BRAID_INT32, data, static_cast<int64_t>(want.size()),
                                 [&](int64_t i) { return want[i]; }));
}

std::string RankText(const std::vector<bool>& ranks) {
  std::string s;
  for (size_t r = 0; r < ranks.size(); ++r)
    if (ranks[r]) s += (s.empty() ? "" : ", ") + std::to_string(r);
  return s;
}

// A broadcast fails on every submitting rank with a message that depends only on
// the name and the joined ranks; the buffer is untouched.
void BroadcastFails(const std::string& name, const std::vector<bool>& joined, int root) {
  Tensor t(BRAID_FLOAT32, {9});
  t.Fill([&](int64_t i) { return braid_rank() * 10.0 + static_cast<double>(i); });
  Handle h;
  ASSERT_EQ(braid_broadcast_async(name.c_str(), t.desc(), root, h.out()), BRAID_OK);
  EXPECT_EQ(h.Wait(), BRAID_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(h.Error(), "broadcast of '" + name + "': rank(s) " + RankText(joined) +
                           " have called join; broadcast is not supported while ranks are joined");
  EXPECT_TRUE(ctu::MatchesValues(
      t, [&](int64_t i) { return braid_rank() * 10.0 + static_cast<double>(i); }));
}

// Rank r submits shape [r+1]: the mismatch names exactly the submitting ranks.
void MismatchNamesSubmitters(const std::string& name, const std::vector<bool>& joined) {
  const int rank = braid_rank();
  Tensor t(BRAID_FLOAT32, {rank + 1});
  Handle h;
  ASSERT_EQ(braid_allreduce_async(name.c_str(), t.desc(), t.data(), BRAID_SUM, 1, 1, h.out()),
            BRAID_OK);
  EXPECT_EQ(h.Wait(), BRAID_ERR_MISMATCH);
  std::string want = "Mismatched shapes for '" + name + "' across ranks:";
  bool first = true;
  for (int r = 0; r < braid_size(); ++r) {
    if (joined[r]) continue;
    want += std::string(first ? "" : ",") + " rank " + std::to_string(r) + " has [" +
            std::to_string(r + 1) + "]";
    first = false;
  }
  EXPECT_EQ(h.Error(), want);
}

// An allreduce of ones: how many ranks contribute. It completes only once every
// other rank has submitted it or joined.
int CountContributors(const std::string& name) {
  Tensor t(BRAID_INT32, {1});
  t.Set(0, 1);
  Handle h;
  EXPECT_EQ(braid_allreduce_async(name.c_str(), t.desc(), t.data(), BRAID_SUM, 1, 1, h.out()),
            BRAID_OK);
  EXPECT_EQ(h.Wait(), BRAID_OK) << h.Error();
  return static_cast<int>(ctu::LoadElem(BRAID_INT32, t.data(), 0));
}

// What the ranks that have not joined do while `first` is joined. Names start
// with `tag`, made before the ranks went separate ways (a joined rank makes no
// calls here, so per-process name counters would no longer agree).
void WorkWhileJoined(const std::string& tag, const std::vector<bool>& joined, bool full) {
  int root = 0;
  while (joined[root]) ++root;
  if (full) {
    ReduceEachAlone("cached", joined, 3);  // names the warm-up put in the cache
    ReduceEachAlone(tag + ".fresh", joined, 4);
    ReduceFused("cached", joined, 5);
    ReduceFused(tag + ".fresh", joined, 6);
  }
  GatherWithJoined(tag + ".gather", joined);
  BroadcastFails(tag + ".bcast", joined, root);
  ReduceFused(tag + ".after_bcast", joined, 7);  // still usable
  EXPECT_EQ(braid_barrier(), BRAID_OK) << braid_last_error();
  if (braid_size() - 1 >= 2) MismatchNamesSubmitters(tag + ".mismatch", joined);
}

// `first` joins at once; the others work, then join, the highest of them last.
void RunJoinScenario(int first, bool full) {
  const int rank = braid_rank(), size = braid_size();
  if (full) {  // warm-up with every rank: the "cached" names enter the response cache
    ReduceEachAlone("cached", std::vector<bool>(size, false), 1);
    ReduceFused("cached", std::vector<bool>(size, false), 2);
  }
  const std::string tag = ctu::UniqueName("scenario");
  int last_joiner = size - 1;
  if (last_joiner == first && size > 1) --last_joiner;
  std::vector<bool> joined(size, false);
  joined[first] = true;
  int last = -1, rc = BRAID_OK;
  if (rank == first) {
    rc = braid_join(&last);
  } else {
    WorkWhileJoined(tag, joined, full);
    if (rank == last_joiner) EXPECT_EQ(CountContributors(tag + ".probe"), 1);
    rc = braid_join(&last);
  }
  EXPECT_EQ(rc, BRAID_OK) << braid_last_error();
  EXPECT_EQ(last, last_joiner) << "first joiner " << first;
  EXPECT_TRUE(ctu::EngineUsable()) << "after the join";
}

class JoinTest : public ctu::BraidTest {};

TEST_F(JoinTest, RankZeroJoinsFirst) {
  RunJoinScenario(0, /*full=*/true);
}

TEST_F(JoinTest, HighestRankJoinsFirst) {
  RunJoinScenario(size_ - 1, /*full=*/true);
}

TEST_F(JoinTest, JoinTwiceInOneEngineLifetime) {
  RunJoinScenario(size_ > 1 ? 1 : 0, /*full=*/false);
  RunJoinScenario(0, /*full=*/false);
}

// Every rank joins at once: all agree on the last joiner (np 1: rank 0).
TEST_F(JoinTest, AllRanksJoinAtOnce) {
  int last = -1;
  ASSERT_EQ(braid_join(&last), BRAID_OK) << braid_last_error();
  EXPECT_GE(last, 0);
  EXPECT_LT(last, size_);
  if (size_ == 1) EXPECT_EQ(last, 0);
  std::vector<int> all(size_);
  MPI_Allgather(&last, 1, MPI_INT, all.data(), 1, MPI_INT, MPI_COMM_WORLD);
  for (int r = 0; r < size_; ++r) EXPECT_EQ(all[r], last) << "rank " << r << " disagrees";
  EXPECT_EQ(braid_join(nullptr), BRAID_OK) << "a NULL result pointer is allowed";
  EXPECT_TRUE(ctu::EngineUsable());
}

// Names already in the response cache complete at once while a rank is joined,
// not after the cache patience (about a second each by default).
TEST_F(JoinTest, CachedNamesDoNotWaitForCachePatience) {
  CTU_REQUIRE_RANKS(2);
  const ReduceCase c{BRAID_FLOAT32, BRAID_SUM, 5};
  std::vector<bool> joined(size_, false);
  joined[0] = true;
  constexpr int kRounds = 8;
  for (int k = 0; k < kRounds; ++k) {  // warm the cache for one name
    Tensor t(c.dtype, {c.count});
    Handle h;
    ASSERT_EQ(Start("join.patience.one", c, k, &t, &h), BRAID_OK);
    ASSERT_EQ(h.Wait(), BRAID_OK) << h.Error();
  }
  int last = -1;
  if (rank_ == 0) {
    ASSERT_EQ(braid_join(&last), BRAID_OK) << braid_last_error();
  } else {
    const Clock::time_point t0 = Clock::now();
    for (int k = 0; k < kRounds; ++k) {
      Tensor t(c.dtype, {c.count});
      Handle h;
      ASSERT_EQ(Start("join.patience.one", c, k, &t, &h), BRAID_OK);
      ASSERT_EQ(h.Wait(), BRAID_OK) << h.Error();
      EXPECT_TRUE(Matches(t, c, joined, k));
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    EXPECT_LT(seconds, kRounds * 0.5) << "cached names waited for the cache patience";
    ASSERT_EQ(braid_join(&last), BRAID_OK) << braid_last_error();
  }
  EXPECT_TRUE(ctu::EngineUsable());
}

// A shutdown (here by another rank) fails a pending join.
TEST_F(JoinTest, ShutdownWhileJoinPendingAborts) {
  CTU_REQUIRE_RANKS(2);
  if (rank_ == 0) {
    int rc = -1;
    std::string error;
    std::thread joiner([&] {
      rc = braid_join(nullptr);
      error = braid_last_error();
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let it be pending
    MPI_Barrier(MPI_COMM_WORLD);
    joiner.join();
    EXPECT_EQ(rc, BRAID_ERR_ABORTED) << error;
    EXPECT_NE(error.find("shut"), std::string::npos) << error;
  } else {
    MPI_Barrier(MPI_COMM_WORLD);
  }
  EXPECT_EQ(braid_shutdown(), BRAID_OK);
}

}  // namespace
