// braid_allreduce_async through the C API: every dtype and reduce op over sizes
// 0, 1, 17, 1 MiB worth of elements and one above the fusion threshold (set to
// 1 MiB here), in place and out of place; scale factors on the floating types;
// fusion of many small tensors of mixed dtypes; sizes large enough for the
// backend's bandwidth-bound path.
//
// Expected values are computed here from the inputs (c_api_test_util.h):
// inputs are small integers, so sums, products, min and max are exact in every
// dtype and compared exactly. Average divides the sum by the rank count: on
// integers rounding toward zero (-7 / 2 == -3), on floating types compared
// within one rounding of the dtype.
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "tests/mpi/c_api_test_util.h"

namespace {

using ctu::Handle;
using ctu::Tensor;

constexpr int64_t kMiB = 1 << 20;

// 1 MiB fusion buffer: a 1 MiB tensor fills it exactly, a bigger one bypasses it.
ctu::EnvList FusionEnv() {
  return {{"BRAID_FUSION_THRESHOLD_BYTES", std::to_string(kMiB)}};
}

// The shapes every dtype x op runs: a scalar, 0, 1, 17, 1 MiB worth of elements
// (as a 2-D tensor) and 1 MiB + 17 elements (above the fusion threshold).
std::vector<std::vector<int64_t>> StandardShapes(int dtype) {
  const int64_t mib_elems = kMiB / static_cast<int64_t>(ctu::DtypeSize(dtype));
  return {{}, {0}, {1}, {17}, {mib_elems / 64, 64}, {mib_elems + 17}};
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

struct Pending {
  std::unique_ptr<Tensor> in;
  std::unique_ptr<Tensor> out;  // null in place
  std::string name;
  Handle handle;
};

// Submits one allreduce per shape (all asynchronously, so the small ones can be
// fused), waits for all of them and checks every output, and that an
// out-of-place input is left alone.
void RunAndCheck(int dtype, int op, const std::vector<std::vector<int64_t>>& shapes, bool in_place,
                 double prescale, double postscale, int salt) {
  const int rank = braid_rank(), size = braid_size();
  std::vector<Pending> ops(shapes.size());
  for (size_t k = 0; k < shapes.size(); ++k) {
    Pending& p = ops[k];
    p.in = std::make_unique<Tensor>(dtype, shapes[k]);
    p.in->Fill([&](int64_t i) { return ctu::InputValue(dtype, op, rank, i, salt); });
    void* dst = p.in->data();
    if (!in_place) {
      p.out = std::make_unique<Tensor>(dtype, shapes[k]);
      p.out->Fill([](int64_t) { return 7.0; });
      dst = p.out->data();
    }
    p.name = ctu::UniqueName(std::string(ctu::DtypeName(dtype)) + "." + ctu::OpName(op) +
                             (in_place ? ".inplace" : ".outofplace") + ShapeText(shapes[k]));
    ASSERT_EQ(braid_allreduce_async(p.name.c_str(), p.in->desc(), dst, op, prescale, postscale,
                                    p.handle.out()),
              BRAID_OK)
        << p.name << ": " << braid_last_error();
  }
  const bool rounded = op == BRAID_AVERAGE && ctu::IsFloat(dtype);
  const double tol = rounded ? ctu::RoundingTolerance(dtype) : 0.0;
  for (Pending& p : ops) {
    ASSERT_EQ(p.handle.Wait(), BRAID_OK) << p.name << ": " << p.handle.Error();
    const Tensor& result = in_place ? *p.in : *p.out;
    EXPECT_TRUE(ctu::MatchesValues(
        result,
        [&](int64_t i) {
          return ctu::ExpectedAllreduce(dtype, op, size, i, prescale, postscale, salt);
        },
        tol))
        << p.name;
    if (!in_place) {
      EXPECT_TRUE(ctu::MatchesValues(
          *p.in, [&](int64_t i) { return ctu::InputValue(dtype, op, rank, i, salt); }))
          << p.name << ": the input of an out-of-place allreduce changed";
    }
  }
}

class AllreduceTest : public ctu::BraidTest {
 protected:
  ctu::EnvList Env() const override { return FusionEnv(); }
};

class AllreduceDtypeOpTest : public AllreduceTest,
                             public ::testing::WithParamInterface<std::tuple<int, int>> {};

std::string DtypeOpName(const ::testing::TestParamInfo<std::tuple<int, int>>& info) {
  return std::string(ctu::DtypeName(std::get<0>(info.param))) + "_" +
         ctu::OpName(std::get<1>(info.param));
}

TEST_P(AllreduceDtypeOpTest, InPlaceAllSizes) {
  const int dtype = std::get<0>(GetParam()), op = std::get<1>(GetParam());
  RunAndCheck(dtype, op, StandardShapes(dtype), /*in_place=*/true, 1.0, 1.0, /*salt=*/1);
}

TEST_P(AllreduceDtypeOpTest, OutOfPlaceAllSizes) {
  const int dtype = std::get<0>(GetParam()), op = std::get<1>(GetParam());
  RunAndCheck(dtype, op, StandardShapes(dtype), /*in_place=*/false, 1.0, 1.0, /*salt=*/2);
}

INSTANTIATE_TEST_SUITE_P(AllDtypesAllOps, AllreduceDtypeOpTest,
                         ::testing::Combine(::testing::ValuesIn(ctu::AllDtypes()),
                                            ::testing::ValuesIn(ctu::AllOps())),
                         DtypeOpName);

// prescale 0.5 and postscale 4 keep every result of small integers exact (except
// average, which divides by the rank count).
class AllreduceScaleTest : public AllreduceDtypeOpTest {};

TEST_P(AllreduceScaleTest, PrescaleHalfPostscaleFour) {
  const int dtype = std::get<0>(GetParam()), op = std::get<1>(GetParam());
  const int64_t above = kMiB / static_cast<int64_t>(ctu::DtypeSize(dtype)) + 17;
  const std::vector<std::vector<int64_t>> shapes = {{1}, {17}, {3, 5}, {above}};
  RunAndCheck(dtype, op, shapes, /*in_place=*/true, 0.5, 4.0, /*salt=*/3);
  RunAndCheck(dtype, op, shapes, /*in_place=*/false, 0.5, 4.0, /*salt=*/4);
}

TEST_P(AllreduceScaleTest, PrescaleOnlyAndPostscaleOnly) {
  const int dtype = std::get<0>(GetParam()), op = std::get<1>(GetParam());
  RunAndCheck(dtype, op, {{17}, {40}}, /*in_place=*/true, 4.0, 1.0, /*salt=*/5);
  RunAndCheck(dtype, op, {{17}, {40}}, /*in_place=*/false, 1.0, 0.5, /*salt=*/6);
}

INSTANTIATE_TEST_SUITE_P(FloatDtypesAllOps, AllreduceScaleTest,
                         ::testing::Combine(::testing::ValuesIn(ctu::FloatDtypes()),
                                            ::testing::ValuesIn(ctu::AllOps())),
                         DtypeOpName);

// A few MiB per tensor: large enough for the bandwidth-bound algorithms.
TEST_F(AllreduceTest, LargeTensorsEveryDtype) {
  for (int dtype : ctu::AllDtypes()) {
    const int64_t n = 5 * kMiB / static_cast<int64_t>(ctu::DtypeSize(dtype)) + 3;
    for (int op : {BRAID_SUM, BRAID_MAX, BRAID_PRODUCT}) {
      SCOPED_TRACE(std::string(ctu::DtypeName(dtype)) + " " + ctu::OpName(op));
      RunAndCheck(dtype, op, {{n}}, /*in_place=*/op != BRAID_MAX, 1.0, 1.0, /*salt=*/7);
    }
  }
}

// Many small tensors of different sizes submitted together, with tensors of
// other dtypes and ops in between (which cannot share a fusion buffer with
// their neighbours); every result must be right.
TEST_F(AllreduceTest, ManySmallTensorsMixedDtypesFused) {
  constexpr int kTensors = 50;
  const int rank = rank_, size = size_;
  struct Item {
    int dtype, op;
    std::unique_ptr<Tensor> t;
    std::string name;
    Handle h;
  };
  std::vector<Item> items(kTensors);
  for (int k = 0; k < kTensors; ++k) {
    Item& it = items[k];
    it.dtype = k % 7 == 3 ? BRAID_INT32 : (k % 11 == 5 ? BRAID_FLOAT64 : BRAID_FLOAT32);
    it.op = k % 13 == 6 ? BRAID_MAX : BRAID_SUM;
    it.t = std::make_unique<Tensor>(it.dtype, std::vector<int64_t>{(k * 37) % 101 + 1});
    it.t->Fill([&](int64_t i) { return ctu::InputValue(it.dtype, it.op, rank, i, k); });
    it.name = ctu::UniqueName("fused" + std::to_string(k));
    ASSERT_EQ(braid_allreduce_async(it.name.c_str(), it.t->desc(), it.t->data(), it.op, 1.0, 1.0,
                                    it.h.out()),
              BRAID_OK)
        << braid_last_error();
  }
  for (int k = 0; k < kTensors; ++k) {
    Item& it = items[k];
    ASSERT_EQ(it.h.Wait(), BRAID_OK) << it.name << ": " << it.h.Error();
    EXPECT_TRUE(ctu::MatchesValues(*it.t, [&](int64_t i) {
      return ctu::ExpectedAllreduce(it.dtype, it.op, size, i, 1.0, 1.0, k);
    })) << it.name;
  }
}

// 40 tensors of 64 KiB: 2.5 MiB in all, more than one fusion buffer holds.
TEST_F(AllreduceTest, FusedTensorsSpanSeveralBuffers) {
  constexpr int kTensors = 40;
  const int64_t n = 64 * 1024 / 4;
  std::vector<std::unique_ptr<Tensor>> in, out;
  std::vector<Handle> handles(kTensors);
  std::vector<std::string> names;
  for (int k = 0; k < kTensors; ++k) {
    in.push_back(std::make_unique<Tensor>(BRAID_FLOAT32, std::vector<int64_t>{n}));
    out.push_back(std::make_unique<Tensor>(BRAID_FLOAT32, std::vector<int64_t>{n}));
    in[k]->Fill([&](int64_t i) { return ctu::SmallValue(BRAID_FLOAT32, rank_, i, k); });
    names.push_back(ctu::UniqueName("span" + std::to_string(k)));
    ASSERT_EQ(braid_allreduce_async(names[k].c_str(), in[k]->desc(), out[k]->data(), BRAID_AVERAGE,
                                    1.0, 1.0, handles[k].out()),
              BRAID_OK)
        << braid_last_error();
  }
  for (int k = 0; k < kTensors; ++k) {
    ASSERT_EQ(handles[k].Wait(), BRAID_OK) << names[k] << ": " << handles[k].Error();
    EXPECT_TRUE(ctu::MatchesValues(
        *out[k],
        [&](int64_t i) {
          return ctu::ExpectedAllreduce(BRAID_FLOAT32, BRAID_AVERAGE, size_, i, 1.0, 1.0, k);
        },
        ctu::RoundingTolerance(BRAID_FLOAT32)))
        << names[k];
  }
}

// Integer average divides the sum by the rank count rounding toward zero, for
// negative sums too (-7 / 2 == -3, not -4).
TEST_F(AllreduceTest, IntegerAverageRoundsTowardZero) {
  for (int dtype : {BRAID_INT8, BRAID_INT32, BRAID_INT64}) {
    Tensor t(dtype, {8});
    // Element i holds (i - 4) + rank: sums of both signs, most not divisible.
    t.Fill([&](int64_t i) { return static_cast<double>(i - 4 + rank_); });
    Handle h;
    const std::string name = ctu::UniqueName(std::string("avg.") + ctu::DtypeName(dtype));
    ASSERT_EQ(
        braid_allreduce_async(name.c_str(), t.desc(), t.data(), BRAID_AVERAGE, 1.0, 1.0, h.out()),
        BRAID_OK)
        << braid_last_error();
    ASSERT_EQ(h.Wait(), BRAID_OK) << h.Error();
    EXPECT_TRUE(ctu::MatchesValues(t, [&](int64_t i) {
      int64_t sum = 0;
      for (int r = 0; r < size_; ++r) sum += i - 4 + r;
      return static_cast<double>(sum / size_);  // C++ division truncates toward zero
    })) << name;
  }
}

}  // namespace
