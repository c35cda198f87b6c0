// ValidateRequest and RequestMeta::NumElements on shapes and dtypes that cannot be
// reduced: negative dimensions, element and byte counts beyond int64, unknown
// dtypes, and what bool tensors cannot do. Every message names the tensor.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/request.h"

namespace braid {
namespace {

RequestMeta Meta(std::vector<int64_t> shape, DataType dtype = DataType::kFloat32) {
  RequestMeta m;
  m.name = "grad.w";
  m.dtype = dtype;
  m.shape = std::move(shape);
  return m;
}

::testing::AssertionResult Refused(const RequestMeta& m, const std::string& why) {
  const Status st = ValidateRequest(m, 4);
  if (st.ok()) return ::testing::AssertionFailure() << "accepted";
  if (st.code() != StatusCode::kInvalidArgument)
    return ::testing::AssertionFailure() << "code " << static_cast<int>(st.code());
  if (st.message().find("'grad.w'") == std::string::npos ||
      st.message().find(why) == std::string::npos)
    return ::testing::AssertionFailure() << st.message();
  return ::testing::AssertionSuccess();
}

constexpr int64_t k2To32 = int64_t{1} << 32;

TEST(RequestValidationTest, NumElementsReportsOverflowInsteadOfWrapping) {
  EXPECT_EQ(Meta({k2To32, k2To32}).NumElements(), -1);  // 2^64 would wrap to 0
  EXPECT_EQ(Meta({k2To32, k2To32, 3}).NumElements(), -1);
  EXPECT_EQ(Meta({INT64_MAX, 2}).NumElements(), -1);
  EXPECT_EQ(Meta({3, -2}).NumElements(), -1);
  EXPECT_EQ(Meta({INT64_MAX}).NumElements(), INT64_MAX);
  EXPECT_EQ(Meta({k2To32, k2To32 / 2 - 1}).NumElements(), k2To32 * (k2To32 / 2 - 1));
  // Zero elements whatever the other dimensions say, before or after the zero.
  EXPECT_EQ(Meta({k2To32, k2To32, 0}).NumElements(), 0);
  EXPECT_EQ(Meta({0, k2To32, k2To32}).NumElements(), 0);
  EXPECT_EQ(Meta({}).NumElements(), 1);
}

TEST(RequestValidationTest, ShapesThatCannotBeCountedAreRefused) {
  EXPECT_TRUE(Refused(Meta({k2To32, k2To32}), "element count overflows int64"));
  EXPECT_TRUE(Refused(Meta({2, -3}), "dimension 1 is negative"));
  EXPECT_TRUE(Refused(Meta({-1, k2To32, k2To32}), "dimension 0 is negative"));
  // 2^62 float32 elements are 2^64 bytes.
  EXPECT_TRUE(Refused(Meta({int64_t{1} << 62}), "overflow an int64 byte count"));
  EXPECT_TRUE(ValidateRequest(Meta({int64_t{1} << 62}, DataType::kUInt8), 4).ok());
  EXPECT_TRUE(ValidateRequest(Meta({k2To32, k2To32, 0}), 4).ok());
  EXPECT_TRUE(Refused(Meta({2, -3}), "[2, -3]"));  // the shape is quoted
}

TEST(RequestValidationTest, UnknownDtypeIsRefused) {
  EXPECT_TRUE(Refused(Meta({4}, static_cast<DataType>(kNumDataTypes)), "unknown dtype"));
  EXPECT_TRUE(Refused(Meta({4}, static_cast<DataType>(-1)), "unknown dtype"));
  EXPECT_TRUE(ValidateRequest(Meta({4}, DataType::kInt16), 4).ok());
}

TEST(RequestValidationTest, BoolIsNeitherAveragedNorScaled) {
  RequestMeta m = Meta({4}, DataType::kBool);
  for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kMin, ReduceOp::kMax, ReduceOp::kProduct}) {
    m.op = op;
    EXPECT_TRUE(ValidateRequest(m, 4).ok()) << ReduceOpName(op);
  }
  m.op = ReduceOp::kAverage;
  EXPECT_TRUE(Refused(m, "cannot be averaged"));
  m.op = ReduceOp::kSum;
  m.prescale = 2.0;
  EXPECT_TRUE(Refused(m, "cannot be scaled"));
  m.prescale = 1.0;
  m.postscale = 0.5;
  EXPECT_TRUE(Refused(m, "cannot be scaled"));
  m.collective = Collective::kBroadcast;  // scale factors mean nothing there
  EXPECT_TRUE(ValidateRequest(m, 4).ok());
  m.collective = Collective::kAllgather;
  m.op = ReduceOp::kAverage;
  EXPECT_TRUE(ValidateRequest(m, 4).ok());
}

}  // namespace
}  // namespace braid
