// Element types through the C API: float16 / bfloat16 reductions rounded once
// (an average of values near float16's maximum, sums of small addends) on the
// MPI_Allreduce path and on the ring path; pre- and postscaling exactly as Horovod
// defines them; int16 and bool in every collective they support.
//
// Horovod's scaling (its ScaleBuffer), for the references here: the factor is
// converted to float for float32 and float16 (float16 computed in float32 and
// rounded to nearest even; braid does the same for bfloat16) and kept double for
// float64 and the integers (the double product converted back, truncating). Its
// average folds 1/size into the postscale factor (postscale / size). With the same
// tensor t on every rank, its allreduce with prescale f is the dtype's sum of size
// copies of p = scale(f, t): one rounding of size * p at 2 and 3 ranks (p + p is
// exact), which is what these tests compare bit for bit.
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "tests/mpi/c_api_test_util.h"

namespace {

using ctu::Handle;
using ctu::Tensor;

constexpr int64_t kRingThresholdBytes = 4 << 20;  // the MPI backend's default

// Element counts for every allreduce path of the MPI backend, all odd: MPI_Allreduce
// (for 16-bit reductions that round once, on a float32 copy), the ring from its
// 4 KiB threshold for those (mpi_backend.h), and the ring for every dtype.
std::vector<int64_t> PathCounts(int dtype) {
  return {1001, 5001, kRingThresholdBytes / static_cast<int64_t>(ctu::DtypeSize(dtype)) + 101};
}

class DtypesTest : public ctu::BraidTest {};

// Runs one allreduce in place and waits; returns the C API status.
int Allreduce(Tensor* t, int op, double prescale = 1.0, double postscale = 1.0,
              const std::string& tag = "ar") {
  Handle h;
  const std::string name = ctu::UniqueName(tag);
  int rc =
      braid_allreduce_async(name.c_str(), t->desc(), t->data(), op, prescale, postscale, h.out());
  if (rc != BRAID_OK) return rc;
  rc = h.Wait();
  EXPECT_EQ(rc, BRAID_OK) << name << ": " << h.Error();
  return rc;
}

uint16_t Bits16(const Tensor& t, int64_t i) {
  return static_cast<const uint16_t*>(t.data())[i];
}

// Every rank averages float16 60000: a float16 sum of two of them is already past
// 65504, so rounding each partial sum to float16 gives infinity. The average is
// exactly 60000.
TEST_F(DtypesTest, Float16AverageNearTheMaximumIsExact) {
  for (int64_t n : PathCounts(BRAID_FLOAT16)) {
    Tensor t(BRAID_FLOAT16, {n});
    t.Fill([](int64_t) { return 60000.0; });
    ASSERT_EQ(Allreduce(&t, BRAID_AVERAGE), BRAID_OK);
    EXPECT_TRUE(ctu::MatchesValues(t, [](int64_t) { return 60000.0; })) << n << " elements";
  }
}

// Element i: 1 on rank i % size; on the others a multiple of an eighth of the last
// place of 1 (at most 3/8 of it: each is lost when added to 1 on its own, but not
// two or three together). The float64 sum is exact and fits float32, so its one
// rounding to the format is the reference, bit for bit.
double SmallAddend(int dtype, int rank, int64_t i) {
  const double ulp_of_one = dtype == BRAID_FLOAT16 ? std::ldexp(1.0, -10) : std::ldexp(1.0, -7);
  if (rank == static_cast<int>(i % braid_size())) return 1.0;
  return ulp_of_one * (0.125 * static_cast<double>((i + rank) % 4));
}

TEST_F(DtypesTest, SixteenBitSumIsRoundedOnce) {
  const int rank = braid_rank(), size = braid_size();
  for (int dtype : {BRAID_FLOAT16, BRAID_BFLOAT16}) {
    for (int64_t n : PathCounts(dtype)) {
      Tensor t(dtype, {n});
      t.Fill([&](int64_t i) { return SmallAddend(dtype, rank, i); });
      ASSERT_EQ(Allreduce(&t, BRAID_SUM), BRAID_OK);
      int64_t wrong = 0;
      for (int64_t i = 0; i < n && wrong < 5; ++i) {
        double exact = 0;
        for (int r = 0; r < size; ++r) exact += SmallAddend(dtype, r, i);
        const float f = static_cast<float>(exact);  // exact: few significant bits
        const uint16_t want = dtype == BRAID_FLOAT16 ? ctu::FloatToHalf(f) : ctu::FloatToBf16(f);
        if (Bits16(t, i) == want) continue;
        ++wrong;
        ADD_FAILURE() << ctu::DtypeName(dtype) << " n " << n << " @" << i << ": got "
                      << ctu::LoadElem(dtype, t.data(), i) << ", the exact sum " << exact
                      << " rounds to " << ctu::LoadElem(dtype, &want, 0);
      }
    }
  }
}

// Horovod's scaling of one value, in the dtype's arithmetic (see the top).
double HorovodScale(int dtype, double factor, double x) {
  switch (dtype) {
    case BRAID_FLOAT16:
      return ctu::HalfToFloat(ctu::FloatToHalf(static_cast<float>(factor) * static_cast<float>(x)));
    case BRAID_BFLOAT16:
      return ctu::Bf16ToFloat(ctu::FloatToBf16(static_cast<float>(factor) * static_cast<float>(x)));
    case BRAID_FLOAT32:
      return static_cast<float>(factor) * static_cast<float>(x);
    case BRAID_FLOAT64:
      return factor * x;
    default:
      return std::trunc(factor * x);  // the integer conversion of the double product
  }
}

// The dtype's sum of `size` equal values p: one rounding of size * p (exact in
// float32 for the 16-bit formats, in double for float32 and the integers used).
double HorovodSumOfCopies(int dtype, int size, double p) {
  switch (dtype) {
    case BRAID_FLOAT16:
      return ctu::HalfToFloat(ctu::FloatToHalf(static_cast<float>(size * p)));
    case BRAID_BFLOAT16:
      return ctu::Bf16ToFloat(ctu::FloatToBf16(static_cast<float>(size * p)));
    case BRAID_FLOAT32:
      return static_cast<float>(size * p);
    default:
      return size * p;
  }
}

// The same value on every rank, varied over the elements, within every dtype's
// range after scaling and summing over 3 ranks.
double ScaledInput(int dtype, int64_t i) {
  const double k = static_cast<double>((i * 37) % 1001) - 500;
  switch (dtype) {
    case BRAID_UINT8:
      return static_cast<double>((i * 37) % 30);
    case BRAID_INT8:
      return static_cast<double>((i * 37) % 33) - 16;
    case BRAID_INT16:
      return k * 5;
    default:
      return ctu::IsFloat(dtype) ? k / 7.3 : k * 13;
  }
}

class HorovodScalingTest : public DtypesTest, public ::testing::WithParamInterface<int> {
 protected:
  void SetUp() override {
    DtypesTest::SetUp();
    if (size_ > 3) {
      GTEST_SKIP() << "Horovod's sum of equal values is one rounding of size * p at 2 and "
                      "3 ranks; at 4 its association order is MPI's";
    }
  }

  // Reduces the same input on every rank out of place, on both allreduce paths,
  // and compares with expected(x_i) for the input x_i as stored in the dtype.
  void Check(int op, double prescale, double postscale,
             const std::function<double(double)>& expected) {
    const int dtype = GetParam();
    for (int64_t n : PathCounts(dtype)) {
      Tensor in(dtype, {n}), out(dtype, {n});
      in.Fill([&](int64_t i) { return ScaledInput(dtype, i); });
      Handle h;
      const std::string name = ctu::UniqueName("scaled");
      ASSERT_EQ(braid_allreduce_async(name.c_str(), in.desc(), out.data(), op, prescale, postscale,
                                      h.out()),
                BRAID_OK)
          << braid_last_error();
      ASSERT_EQ(h.Wait(), BRAID_OK) << h.Error();
      EXPECT_TRUE(ctu::MatchesValues(
          out, [&](int64_t i) { return expected(ctu::LoadElem(dtype, in.data(), i)); }))
          << ctu::OpName(op) << " prescale " << prescale << " postscale " << postscale << ", " << n
          << " elements";
    }
  }
};

// allreduce(t, op=Sum, prescale_factor=f) is Horovod's bit for bit (exactly, for
// the integers): f * t * size in the dtype's arithmetic.
TEST_P(HorovodScalingTest, PrescaledSum) {
  const int dtype = GetParam();
  for (double f : {0.1, 1.0 / 3, 0.7, 2.5}) {
    Check(BRAID_SUM, f, 1.0,
          [&](double x) { return HorovodSumOfCopies(dtype, size_, HorovodScale(dtype, f, x)); });
  }
}

// Postscale: the dtype's sum, then scaled in the dtype's arithmetic.
TEST_P(HorovodScalingTest, PostscaledSum) {
  const int dtype = GetParam();
  for (double g : {0.1, 1.0 / 3, 1.7}) {
    Check(BRAID_SUM, 1.0, g,
          [&](double x) { return HorovodScale(dtype, g, HorovodSumOfCopies(dtype, size_, x)); });
  }
}

// Average with both factors: Horovod's postscale / size after the prescaled sum.
// For float16 / bfloat16 braid averages in float32 instead (one rounding of the
// float32 sum times float32(1/size); see core/reduce_plan.h), then postscales.
TEST_P(HorovodScalingTest, AverageWithScaleFactors) {
  const int dtype = GetParam();
  const double f = 0.7, g = 1.0 / 3;
  const bool sixteen_bit = dtype == BRAID_FLOAT16 || dtype == BRAID_BFLOAT16;
  // Integers: an exact division by size (Horovod's multiplication by 1.0 / size
  // gives the same truncated quotient at 2 and 3 ranks), so no postscale here.
  const double post = ctu::IsFloat(dtype) ? g : 1.0;
  Check(BRAID_AVERAGE, f, post, [&](double x) {
    const double p = HorovodScale(dtype, f, x);
    if (!sixteen_bit) {
      return HorovodScale(dtype, post / size_, HorovodSumOfCopies(dtype, size_, p));
    }
    const float mean = static_cast<float>(1.0 / size_) * static_cast<float>(size_ * p);
    return HorovodScale(dtype, post, HorovodScale(dtype, 1.0, mean));
  });
}

INSTANTIATE_TEST_SUITE_P(Dtypes, HorovodScalingTest, ::testing::ValuesIn(ctu::AllDtypes()),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::string(ctu::DtypeName(info.param));
                         });

// int16 beyond int8's range in every collective: sums, min, max, allgather of
// rows of different counts per rank, broadcast from every root.
TEST_F(DtypesTest, Int16InEveryCollective) {
  const int rank = rank_, size = size_;
  auto value = [](int r, int64_t i) { return 1000.0 * (r + 1) * ((i % 2) ? -1 : 1) + i % 7; };
  for (int op : {BRAID_SUM, BRAID_MIN, BRAID_MAX, BRAID_AVERAGE}) {
    Tensor t(BRAID_INT16, {300});
    t.Fill([&](int64_t i) { return value(rank, i); });
    ASSERT_EQ(Allreduce(&t, op), BRAID_OK);
    EXPECT_TRUE(ctu::MatchesValues(t, [&](int64_t i) {
      double acc = value(0, i), sum = acc;
      for (int r = 1; r < size; ++r) {
        sum += value(r, i);
        acc = op == BRAID_MIN ? std::min(acc, value(r, i)) : std::max(acc, value(r, i));
      }
      if (op == BRAID_SUM) return sum;
      if (op == BRAID_AVERAGE) return std::trunc(sum / size);
      return acc;
    })) << ctu::OpName(op);
  }
  Tensor rows(BRAID_INT16, {rank + 1, 3});
  rows.Fill([&](int64_t i) { return -30000.0 + 1000 * rank + i; });
  Handle h;
  const std::string name = ctu::UniqueName("int16.gather");
  ASSERT_EQ(braid_allgather_async(name.c_str(), rows.desc(), h.out()), BRAID_OK);
  ASSERT_EQ(h.Wait(), BRAID_OK) << h.Error();
  const void* data = nullptr;
  int ndim = 0;
  const int64_t* shape = nullptr;
  ASSERT_EQ(braid_handle_output(h.get(), &data, &ndim, &shape), BRAID_OK);
  ASSERT_EQ(ndim, 2);
  EXPECT_EQ(shape[0], size * (size + 1) / 2);
  int64_t at = 0;
  for (int r = 0; r < size; ++r) {
    for (int64_t i = 0; i < 3 * (r + 1); ++i, ++at) {
      ASSERT_EQ(ctu::LoadElem(BRAID_INT16, data, at), -30000.0 + 1000 * r + i) << r << " " << i;
    }
  }
  for (int root = 0; root < size; ++root) {
    Tensor b(BRAID_INT16, {5});
    b.Fill([&](int64_t i) { return rank == root ? 32767.0 - i : 0.0; });
    Handle hb;
    const std::string bname = ctu::UniqueName("int16.bcast");
    ASSERT_EQ(braid_broadcast_async(bname.c_str(), b.desc(), root, hb.out()), BRAID_OK);
    ASSERT_EQ(hb.Wait(), BRAID_OK) << hb.Error();
    EXPECT_TRUE(ctu::MatchesValues(b, [](int64_t i) { return 32767.0 - i; })) << root;
  }
}

// bool: 0 or 1 per byte. Element i is true on rank r when bit r of i is set, so
// every combination of the ranks' values occurs.
double BoolValue(int rank, int64_t i) {
  return static_cast<double>((i >> rank) & 1);
}

TEST_F(DtypesTest, BoolReductionsAreLogical) {
  const int size = size_;
  const int64_t n = int64_t{1} << size;
  for (int op : {BRAID_SUM, BRAID_MAX, BRAID_MIN, BRAID_PRODUCT}) {
    for (int64_t count : {n, n * 1000 + 1}) {  // a fused-size and a larger tensor
      Tensor t(BRAID_BOOL, {count});
      t.Fill([&](int64_t i) { return BoolValue(rank_, i % n); });
      ASSERT_EQ(Allreduce(&t, op), BRAID_OK);
      const bool any = op == BRAID_SUM || op == BRAID_MAX;
      EXPECT_TRUE(ctu::MatchesValues(t,
                                     [&](int64_t i) {
                                       const int64_t pattern = i % n;
                                       return any ? (pattern != 0 ? 1.0 : 0.0)
                                                  : (pattern == n - 1 ? 1.0 : 0.0);
                                     }))
          << ctu::OpName(op) << " " << count;
    }
  }
}

TEST_F(DtypesTest, BoolAllgatherAndBroadcast) {
  Tensor flat(BRAID_BOOL, {rank_ + 2});
  flat.Fill([&](int64_t i) { return BoolValue(0, i + rank_); });
  Handle h;
  const std::string name = ctu::UniqueName("bool.gather");
  ASSERT_EQ(braid_allgather_async(name.c_str(), flat.desc(), h.out()), BRAID_OK);
  ASSERT_EQ(h.Wait(), BRAID_OK) << h.Error();
  const void* data = nullptr;
  int ndim = 0;
  const int64_t* shape = nullptr;
  ASSERT_EQ(braid_handle_output(h.get(), &data, &ndim, &shape), BRAID_OK);
  int64_t at = 0;
  for (int r = 0; r < size_; ++r) {
    for (int64_t i = 0; i < r + 2; ++i, ++at) {
      ASSERT_EQ(static_cast<const uint8_t*>(data)[at], BoolValue(0, i + r)) << r << " " << i;
    }
  }
  EXPECT_EQ(shape[0], at);
  for (int root = 0; root < size_; ++root) {
    Tensor b(BRAID_BOOL, {7});
    b.Fill([&](int64_t i) { return rank_ == root ? BoolValue(0, i + root) : 0.0; });
    Handle hb;
    const std::string bname = ctu::UniqueName("bool.bcast");
    ASSERT_EQ(braid_broadcast_async(bname.c_str(), b.desc(), root, hb.out()), BRAID_OK);
    ASSERT_EQ(hb.Wait(), BRAID_OK) << hb.Error();
    EXPECT_TRUE(ctu::MatchesValues(b, [&](int64_t i) { return BoolValue(0, i + root); }));
  }
}

// Refused at the call, on every rank alike (each rank checks its own request),
// with the tensor's name and the reason; the engine goes on.
TEST_F(DtypesTest, BoolAverageAndScalingAreRefused) {
  Tensor t(BRAID_BOOL, {4});
  Handle h;
  const std::string name = ctu::UniqueName("bool.mean");
  EXPECT_EQ(
      braid_allreduce_async(name.c_str(), t.desc(), t.data(), BRAID_AVERAGE, 1.0, 1.0, h.out()),
      BRAID_ERR_INVALID_ARGUMENT);
  std::string error = braid_last_error();
  EXPECT_NE(error.find(name), std::string::npos) << error;
  EXPECT_NE(error.find("cannot be averaged"), std::string::npos) << error;
  EXPECT_EQ(braid_allreduce_async(name.c_str(), t.desc(), t.data(), BRAID_SUM, 2.0, 1.0, h.out()),
            BRAID_ERR_INVALID_ARGUMENT);
  error = braid_last_error();
  EXPECT_NE(error.find("cannot be scaled"), std::string::npos) << error;
  EXPECT_TRUE(ctu::EngineUsable());
}

}  // namespace
