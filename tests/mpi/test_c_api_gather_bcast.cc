// braid_allgather_async and braid_broadcast_async through the C API.
//
// Allgather: the first dimension differs between ranks (rank r contributes r+1
// rows; patterns where some or all ranks contribute 0 rows), 1 to 3 dimensions,
// every dtype; the braid-owned output is read with braid_handle_output and must
// be the ranks' rows concatenated in rank order. Broadcast: from every root,
// every dtype, sizes 0, 1, 17, 2-D, a scalar and 1 MiB worth of elements.
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "tests/mpi/c_api_test_util.h"

namespace {

using ctu::Handle;
using ctu::Tensor;

constexpr int64_t kMiB = 1 << 20;

// A marker no input value equals: what a non-root holds before a broadcast.
constexpr double kSentinel = 77;

struct RowPattern {
  const char* name;
  std::function<int64_t(int rank)> rows;
};

// Row counts per rank: r+1; r (rank 0 contributes nothing); 0 on odd ranks;
// nothing anywhere.
const std::vector<RowPattern>& RowPatterns() {
  static const std::vector<RowPattern> patterns = {
      {"rank_plus_one", [](int r) { return int64_t{r} + 1; }},
      {"rank", [](int r) { return int64_t{r}; }},
      {"odd_ranks_empty", [](int r) { return r % 2 ? int64_t{0} : int64_t{r} + 2; }},
      {"all_empty", [](int) { return int64_t{0}; }},
  };
  return patterns;
}

std::vector<int64_t> TrailingDims(int ndim) {
  if (ndim == 1) return {};
  if (ndim == 2) return {3};
  return {2, 5};
}

struct GatherCase {
  std::string name;
  std::unique_ptr<Tensor> in;
  std::vector<int64_t> rows_of;  // per rank
  Handle h;
};

// Starts an allgather of `rows(rank)` rows of `trailing` elements each; element
// j of rank r's input is SmallValue(dtype, r, j, salt).
void StartGather(int dtype, const std::vector<int64_t>& trailing,
                 const std::function<int64_t(int)>& rows, int salt, const std::string& tag,
                 GatherCase* c) {
  const int rank = braid_rank(), size = braid_size();
  for (int r = 0; r < size; ++r) c->rows_of.push_back(rows(r));
  std::vector<int64_t> shape = {c->rows_of[rank]};
  shape.insert(shape.end(), trailing.begin(), trailing.end());
  c->in = std::make_unique<Tensor>(dtype, shape);
  c->in->Fill([&](int64_t j) { return ctu::SmallValue(dtype, rank, j, salt); });
  c->name = ctu::UniqueName(tag);
  ASSERT_EQ(braid_allgather_async(c->name.c_str(), c->in->desc(), c->h.out()), BRAID_OK)
      << c->name << ": " << braid_last_error();
}

// Waits for `c` and checks the output's shape and contents.
void CheckGather(int dtype, const std::vector<int64_t>& trailing, int salt, GatherCase* c) {
  ASSERT_EQ(c->h.Wait(), BRAID_OK) << c->name << ": " << c->h.Error();
  const void* data = nullptr;
  int ndim = -1;
  const int64_t* shape = nullptr;
  ASSERT_EQ(braid_handle_output(c->h.get(), &data, &ndim, &shape), BRAID_OK)
      << c->name << ": " << braid_last_error();
  ASSERT_EQ(ndim, static_cast<int>(trailing.size()) + 1) << c->name;
  ASSERT_NE(shape, nullptr) << c->name;
  int64_t total_rows = 0, row_elems = 1;
  for (int64_t r : c->rows_of) total_rows += r;
  for (int64_t d : trailing) row_elems *= d;
  EXPECT_EQ(shape[0], total_rows) << c->name;
  for (size_t d = 0; d < trailing.size(); ++d) EXPECT_EQ(shape[d + 1], trailing[d]) << c->name;
  // Expected: rank 0's rows, then rank 1's, ...
  std::vector<double> want;
  for (size_t r = 0; r < c->rows_of.size(); ++r)
    for (int64_t j = 0; j < c->rows_of[r] * row_elems; ++j)
      want.push_back(ctu::SmallValue(dtype, static_cast<int>(r), j, salt));
  if (!want.empty()) {
    ASSERT_NE(data, nullptr) << c->name;
  }
  EXPECT_TRUE(ctu::MatchesValues(dtype, data, static_cast<int64_t>(want.size()), [&](int64_t i) {
    return want[static_cast<size_t>(i)];
  })) << c->name;
  // The input is not modified.
  const int rank = braid_rank();
  EXPECT_TRUE(ctu::MatchesValues(*c->in, [&](int64_t j) {
    return ctu::SmallValue(dtype, rank, j, salt);
  })) << c->name;
}

class GatherBcastTest : public ctu::BraidTest {};

class AllgatherTest : public GatherBcastTest,
                      public ::testing::WithParamInterface<std::tuple<int, int>> {};

TEST_P(AllgatherTest, VariableFirstDimension) {
  const int dtype = std::get<0>(GetParam()), ndim = std::get<1>(GetParam());
  const std::vector<int64_t> trailing = TrailingDims(ndim);
  const auto& patterns = RowPatterns();
  std::vector<GatherCase> cases(patterns.size());
  // All patterns in flight at once, then checked.
  for (size_t p = 0; p < patterns.size(); ++p) {
    StartGather(dtype, trailing, patterns[p].rows, static_cast<int>(p), patterns[p].name,
                &cases[p]);
  }
  for (size_t p = 0; p < patterns.size(); ++p) {
    SCOPED_TRACE(patterns[p].name);
    CheckGather(dtype, trailing, static_cast<int>(p), &cases[p]);
  }
}

INSTANTIATE_TEST_SUITE_P(DtypesAndRanks, AllgatherTest,
                         ::testing::Combine(::testing::ValuesIn(ctu::AllDtypes()),
                                            ::testing::Values(1, 2, 3)),
                         [](const ::testing::TestParamInfo<std::tuple<int, int>>& p) {
                           return std::string(ctu::DtypeName(std::get<0>(p.param))) + "_ndim" +
                                  std::to_string(std::get<1>(p.param));
                         });

// Blocks of hundreds of KiB per rank.
TEST_F(GatherBcastTest, AllgatherLargeBlocks) {
  GatherCase f32, i8;
  StartGather(
      BRAID_FLOAT32, {}, [](int r) { return int64_t{r + 1} * 100000; }, 9, "large.f32", &f32);
  StartGather(
      BRAID_INT8, {256}, [](int r) { return int64_t{3 - r % 3} * 1000; }, 10, "large.i8", &i8);
  CheckGather(BRAID_FLOAT32, {}, 9, &f32);
  CheckGather(BRAID_INT8, {256}, 10, &i8);
}

// The same name gathered repeatedly (through the response cache) while the
// first dimension changes between rounds.
TEST_F(GatherBcastTest, AllgatherSameNameChangingRows) {
  const std::string name = ctu::UniqueName("reused");
  for (int round = 0; round < 4; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    GatherCase c;
    const int64_t base = round % 2;
    c.rows_of.clear();
    for (int r = 0; r < size_; ++r) c.rows_of.push_back(base + r);
    std::vector<int64_t> shape = {c.rows_of[rank_], 4};
    c.in = std::make_unique<Tensor>(BRAID_INT32, shape);
    c.in->Fill([&](int64_t j) { return ctu::SmallValue(BRAID_INT32, rank_, j, round); });
    c.name = name;
    ASSERT_EQ(braid_allgather_async(name.c_str(), c.in->desc(), c.h.out()), BRAID_OK)
        << braid_last_error();
    CheckGather(BRAID_INT32, {4}, round, &c);
  }
}

class BroadcastTest : public GatherBcastTest, public ::testing::WithParamInterface<int> {};

TEST_P(BroadcastTest, EveryRootEverySize) {
  const int dtype = GetParam();
  const int64_t mib_elems = kMiB / static_cast<int64_t>(ctu::DtypeSize(dtype));
  const std::vector<std::vector<int64_t>> shapes = {
      {}, {0}, {1}, {17}, {4, 33}, {0, 3}, {mib_elems + 5}};
  struct Item {
    int root;
    int salt;
    std::unique_ptr<Tensor> t;
    std::string name;
    Handle h;
  };
  std::vector<Item> items(static_cast<size_t>(size_) * shapes.size());
  size_t k = 0;
  for (int root = 0; root < size_; ++root) {
    for (size_t s = 0; s < shapes.size(); ++s, ++k) {
      Item& it = items[k];
      it.root = root;
      it.salt = static_cast<int>(k);
      it.t = std::make_unique<Tensor>(dtype, shapes[s]);
      it.t->Fill([&](int64_t i) {
        return rank_ == root ? ctu::SmallValue(dtype, root, i, it.salt) : kSentinel;
      });
      it.name = ctu::UniqueName("root" + std::to_string(root) + ".shape" + std::to_string(s));
      ASSERT_EQ(braid_broadcast_async(it.name.c_str(), it.t->desc(), root, it.h.out()), BRAID_OK)
          << it.name << ": " << braid_last_error();
    }
  }
  for (Item& it : items) {
    ASSERT_EQ(it.h.Wait(), BRAID_OK) << it.name << ": " << it.h.Error();
    EXPECT_TRUE(ctu::MatchesValues(
        *it.t, [&](int64_t i) { return ctu::SmallValue(dtype, it.root, i, it.salt); }))
        << it.name << " on rank " << rank_;
  }
}

INSTANTIATE_TEST_SUITE_P(AllDtypes, BroadcastTest, ::testing::ValuesIn(ctu::AllDtypes()),
                         [](const ::testing::TestParamInfo<int>& p) {
                           return std::string(ctu::DtypeName(p.param));
                         });

// A broadcast from each root in turn on one reused name (cache path), with the
// root changing every round.
TEST_F(GatherBcastTest, BroadcastSameNameRotatingRoot) {
  const std::string name = ctu::UniqueName("rotating");
  for (int round = 0; round < 2 * size_ + 1; ++round) {
    const int root = round % size_;
    Tensor t(BRAID_FLOAT64, {33});
    t.Fill([&](int64_t i) {
      return rank_ == root ? ctu::SmallValue(BRAID_FLOAT64, root, i, round) : kSentinel;
    });
    Handle h;
    ASSERT_EQ(braid_broadcast_async(name.c_str(), t.desc(), root, h.out()), BRAID_OK)
        << braid_last_error();
    ASSERT_EQ(h.Wait(), BRAID_OK) << "round " << round << ": " << h.Error();
    EXPECT_TRUE(ctu::MatchesValues(
        t, [&](int64_t i) { return ctu::SmallValue(BRAID_FLOAT64, root, i, round); }))
        << "round " << round;
  }
}

}  // namespace
