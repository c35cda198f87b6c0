#include <gtest/gtest.h>

#include <cstring>

#include "core/wire.h"

namespace braid {
namespace {

RequestMeta Meta(const std::string& name, Collective c, std::vector<int64_t> shape) {
  RequestMeta m;
  m.name = name;
  m.collective = c;
  m.dtype = DataType::kBFloat16;
  m.op = ReduceOp::kMax;
  m.root = 3;
  m.device = 1;
  m.prescale = 0.25;
  m.postscale = 8;
  m.shape = std::move(shape);
  return m;
}

TEST(Wire, RequestsRoundTrip) {
  std::vector<RequestMeta> in = {Meta("a", Collective::kAllreduce, {2, 3}),
                                 Meta("", Collective::kBarrier, {}),
                                 Meta("braid.join", Collective::kJoin, {}),
                                 Meta(std::string(1000, 'x'), Collective::kAllgather, {5})};
  std::vector<RequestMeta> out;
  ASSERT_TRUE(DecodeRequests(EncodeRequests(in), &out).ok());
  ASSERT_EQ(out.size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) EXPECT_TRUE(out[i] == in[i]) << i;
}

TEST(Wire, EmptyListRoundTrips) {
  std::vector<RequestMeta> out = {Meta("stale", Collective::kAllreduce, {1})};
  ASSERT_TRUE(DecodeRequests(EncodeRequests({}), &out).ok());
  EXPECT_TRUE(out.empty());
}

TEST(Wire, ResponsesRoundTripWithErrorsAndFirstDims) {
  Response ok;
  ok.meta = Meta("g", Collective::kAllgather, {4, 2});
  ok.first_dims = {4, 0, 7};
  ok.devices = {0, 3, 1};
  Response bad;
  bad.meta = Meta("m", Collective::kAllreduce, {1});
  bad.error_code = StatusCode::kMismatch;
  bad.error = "Mismatched shapes";
  std::vector<Response> out;
  ASSERT_TRUE(DecodeResponses(EncodeResponses({ok, bad}), &out).ok());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(out[0].meta == ok.meta);
  EXPECT_EQ(out[0].first_dims, ok.first_dims);
  EXPECT_EQ(out[0].devices, ok.devices);
  EXPECT_TRUE(out[1].devices.empty());
  EXPECT_FALSE(out[0].is_error());
  EXPECT_EQ(out[1].error_code, StatusCode::kMismatch);
  EXPECT_EQ(out[1].error, bad.error);
}

TEST(Wire, TruncatedMessagesAreErrorsAtEveryLength) {
  std::string bytes = EncodeRequests({Meta("abc", Collective::kAllreduce, {1, 2, 3})});
  for (size_t len = 0; len < bytes.size(); ++len) {
    std::vector<RequestMeta> out;
    Status st = DecodeRequests(bytes.substr(0, len), &out);
    EXPECT_FALSE(st.ok()) << "length " << len;
  }
  std::vector<RequestMeta> out;
  EXPECT_FALSE(DecodeRequests(bytes + "x", &out).ok());
}

TEST(Wire, OutOfRangeEnumIsRejected) {
  std::string bytes = EncodeRequests({Meta("a", Collective::kAllreduce, {})});
  // The dtype field follows the magic, count, name length, name and collective.
  size_t dtype_at = 4 + 4 + 4 + 1 + 4;
  bytes[dtype_at] = 42;
  std::vector<RequestMeta> out;
  EXPECT_FALSE(DecodeRequests(bytes, &out).ok());
}

TEST(Wire, UnknownStatusCodeIsRejected) {
  // A handle fails with this code and the C API returns it as BRAID_ERR_*, so a code
  // no StatusCode names is as corrupt as an unknown dtype (found by tests/fuzz).
  Response bad;
  bad.meta = Meta("m", Collective::kAllreduce, {1});
  bad.error_code = StatusCode::kMismatch;
  bad.error = "x";
  std::string bytes = EncodeResponses({bad});
  // The code is the four bytes before the error text and its length.
  size_t code_at = bytes.size() - bad.error.size() - 4 - 4;
  ASSERT_EQ(bytes[code_at], static_cast<char>(StatusCode::kMismatch));
  std::vector<Response> out;
  for (int32_t code : {-1, 1000, 0x00fffa03}) {
    std::memcpy(&bytes[code_at], &code, sizeof(code));
    Status st = DecodeResponses(bytes, &out);
    EXPECT_FALSE(st.ok()) << code;
    EXPECT_NE(st.message().find("corrupt control message"), std::string::npos) << st.message();
  }
}

TEST(Wire, RequestsAndResponsesAreNotConfused) {
  std::vector<Response> responses;
  EXPECT_FALSE(DecodeResponses(EncodeRequests({}), &responses).ok());
}

}  // namespace
}  // namespace braid
