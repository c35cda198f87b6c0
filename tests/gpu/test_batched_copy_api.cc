// BatchedCopier's contract beyond the sweep: special values, integer clamping and
// averaging, argument checks, stream order, descriptors that need not outlive the
// call, and capture into a CUDA graph (which fails on any synchronising call).
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>
#include <memory>
#include <thread>
#include <vector>

#include "tests/gpu/batched_copy_test_util.h"

namespace braid::cuda::test {
namespace {

class BatchedCopyApiTest : public CopierFixture<::testing::Test> {
 protected:
  // One out-of-place entry over `in` (raw element bytes); returns the device result.
  std::vector<uint8_t> RunOne(const std::vector<uint8_t>& in, DataType dtype, const Scaling& s) {
    auto src = Region::Create(static_cast<int64_t>(in.size()));
    auto dst = Region::Create(static_cast<int64_t>(in.size()));
    std::vector<uint8_t> out;
    if (!src || !dst) return out;
    src->host() = in;
    EXPECT_TRUE(src->Upload());
    const int64_t count = static_cast<int64_t>(in.size() / DataTypeSize(dtype));
    Status st = copier_->Copy({{src->device(0), dst->device(0), count}}, dtype, s, stream_);
    EXPECT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
    EXPECT_TRUE(dst->Download(&out));
    return out;
  }

  std::vector<uint8_t> HostResult(const std::vector<uint8_t>& in, DataType dtype,
                                  const Scaling& s) {
    std::vector<uint8_t> out(in.size());
    const int64_t count = static_cast<int64_t>(in.size() / DataTypeSize(dtype));
    cpu::ScaleCopy(out.data(), in.data(), count, dtype, s.factor);
    if (s.divisor > 1) cpu::DivideBy(out.data(), count, dtype, s.divisor);
    return out;
  }
};

template <class T>
std::vector<uint8_t> Bytes(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// Zeros, infinities, NaNs, extremes and subnormals of each floating type, as bits.
// NaN payloads may differ after scaling (the GPU returns its canonical NaN), so a
// NaN only has to stay a NaN; everything else must match the host bit for bit.
TEST_F(BatchedCopyApiTest, FloatSpecialValuesMatchTheHost) {
  struct Case {
    DataType dtype;
    std::vector<uint64_t> bits;
    uint64_t exponent, mantissa;
  };
  const std::vector<Case> cases = {
      {DataType::kFloat16,
       {0x0000, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0x7c01, 0x0001, 0x03ff, 0x0400, 0x7bff, 0xfbff,
        0x3c00, 0x3555, 0x0002, 0x0003},
       0x7c00,
       0x3ff},
      {DataType::kBFloat16,
       {0x0000, 0x8000, 0x7f80, 0xff80, 0x7fc0, 0x7f81, 0x0001, 0x007f, 0x0080, 0x7f7f, 0xff7f,
        0x3f80, 0x3eab, 0x0002, 0x0003},
       0x7f80,
       0x7f},
      {DataType::kFloat32,
       {0x0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0x1, 0x7fffff, 0x800000,
        0x7f7fffff, 0xff7fffff, 0x3f800000, 0x3eaaaaab, 0x2, 0x3},
       0x7f800000,
       0x7fffff},
      {DataType::kFloat64,
       {0x0, 0x8000000000000000, 0x7ff0000000000000, 0xfff0000000000000, 0x7ff8000000000000,
        0x7ff0000000000001, 0x1, 0xfffffffffffff, 0x10000000000000, 0x7fefffffffffffff,
        0x3ff0000000000000, 0x2, 0x3},
       0x7ff0000000000000,
       0xfffffffffffff}};
  for (const Case& c : cases) {
    const size_t size = DataTypeSize(c.dtype);
    std::vector<uint8_t> in(c.bits.size() * size);
    for (size_t i = 0; i < c.bits.size(); ++i) std::memcpy(&in[i * size], &c.bits[i], size);
    for (double factor : {1.0, 0.5, 1.0 / 3.0, 3.0, -2.0, 1e-30}) {
      SCOPED_TRACE(std::string(DataTypeName(c.dtype)) + " factor " + std::to_string(factor));
      const std::vector<uint8_t> got = RunOne(in, c.dtype, Scaling{factor, 1});
      const std::vector<uint8_t> want = HostResult(in, c.dtype, Scaling{factor, 1});
      ASSERT_EQ(got.size(), want.size());
      for (size_t i = 0; i < c.bits.size(); ++i) {
        uint64_t g = 0, w = 0;
        std::memcpy(&g, &got[i * size], size);
        std::memcpy(&w, &want[i * size], size);
        const bool want_nan = (w & c.exponent) == c.exponent && (w & c.mantissa) != 0;
        const bool got_nan = (g & c.exponent) == c.exponent && (g & c.mantissa) != 0;
        if (want_nan && factor != 1.0) {
          EXPECT_TRUE(got_nan) << "input " << std::hex << c.bits[i] << " gave " << g;
        } else {
          EXPECT_EQ(g, w) << "input " << std::hex << c.bits[i];
        }
      }
    }
  }
}

// Products beyond the type's range are clamped, then truncated toward zero.
TEST_F(BatchedCopyApiTest, IntegersClampAndTruncateLikeTheHost) {
  std::vector<uint8_t> all8(256);
  for (int i = 0; i < 256; ++i) all8[i] = static_cast<uint8_t>(i);
  const std::vector<int32_t> i32 = {std::numeric_limits<int32_t>::min(),
                                    std::numeric_limits<int32_t>::max(),
                                    0,
                                    1,
                                    -1,
                                    7,
                                    -7,
                                    99999};
  const std::vector<int64_t> i64 = {std::numeric_limits<int64_t>::min() + 1,
                                    std::numeric_limits<int64_t>::max(),
                                    int64_t{1} << 53,
                                    (int64_t{1} << 53) + 1,
                                    -3,
                                    3,
                                    0};
  for (double factor : {0.5, 1.0 / 3.0, -0.5, 0.999, 1.5, 3.0, -3.0}) {
    SCOPED_TRACE("factor " + std::to_string(factor));
    for (DataType dtype : {DataType::kUInt8, DataType::kInt8}) {
      EXPECT_EQ(RunOne(all8, dtype, {factor, 1}), HostResult(all8, dtype, {factor, 1}));
    }
    EXPECT_EQ(RunOne(Bytes(i32), DataType::kInt32, {factor, 1}),
              HostResult(Bytes(i32), DataType::kInt32, {factor, 1}));
    // |factor| >= 1 can reach 2^63, where the host's conversion is undefined.
    if (factor > -1.0 && factor < 1.0) {
      EXPECT_EQ(RunOne(Bytes(i64), DataType::kInt64, {factor, 1}),
                HostResult(Bytes(i64), DataType::kInt64, {factor, 1}));
    }
  }
}

// 49 * (1.0 / 49) < 1: an integer average must divide, not multiply by 1/n.
TEST_F(BatchedCopyApiTest, IntegerAverageDividesExactly) {
  std::vector<int32_t> in;
  std::vector<int32_t> want;
  for (int32_t k = -1000; k <= 1000; ++k) {
    in.push_back(49 * k);
    want.push_back(k);
  }
  EXPECT_EQ(RunOne(Bytes(in), DataType::kInt32, Scaling{1.0, 49}), Bytes(want));
  std::vector<int64_t> in64 = {(int64_t{1} << 62) + 49 * 3, -(int64_t{1} << 60) - 1, 48, -48};
  std::vector<int64_t> want64;
  for (int64_t v : in64) want64.push_back(v / 49);
  EXPECT_EQ(RunOne(Bytes(in64), DataType::kInt64, Scaling{1.0, 49}), Bytes(want64));
}

TEST_F(BatchedCopyApiTest, RejectsBadArgumentsWithoutEnqueuingAnything) {
  auto src = Region::Create(1024);
  auto dst = Region::Create(1024);
  ASSERT_TRUE(src && dst);
  std::fill(src->host().begin(), src->host().end(), 0xab);
  std::fill(dst->host().begin(), dst->host().end(), 0xcd);
  ASSERT_TRUE(src->Upload() && dst->Upload());
  const CopyEntry good{src->device(0), dst->device(0), 16};
  const std::vector<std::vector<CopyEntry>> bad = {{good, {src->device(64), dst->device(64), -1}},
                                                   {good, {nullptr, dst->device(64), 4}},
                                                   {good, {src->device(64), nullptr, 4}},
                                                   {good, {src->device(65), dst->device(64), 4}},
                                                   {good, {src->device(64), dst->device(66), 4}}};
  for (const auto& entries : bad) {
    Status st = copier_->Copy(entries, DataType::kFloat32, 1.0, stream_);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
  }
  EXPECT_EQ(copier_->Copy({good}, static_cast<DataType>(42), 1.0, stream_).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      copier_->Copy({good}, DataType::kInt32, std::numeric_limits<double>::quiet_NaN(), stream_)
          .code(),
      StatusCode::kInvalidArgument);
  ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
  std::vector<uint8_t> got;
  ASSERT_TRUE(dst->Download(&got));
  EXPECT_EQ(got, dst->host()) << "a rejected call must not copy its good entries";
  // Nothing to do is fine, null pointers included when the count is 0.
  EXPECT_TRUE(copier_->Copy({}, DataType::kFloat32, 0.5, stream_).ok());
  EXPECT_TRUE(copier_->Copy({{nullptr, nullptr, 0}}, DataType::kFloat32, 0.5, stream_).ok());
}

TEST_F(BatchedCopyApiTest, CreateRejectsMissingDevices) {
  std::unique_ptr<BatchedCopier> copier;
  EXPECT_EQ(BatchedCopier::Create(-1, &copier).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(BatchedCopier::Create(VisibleDeviceCount(), &copier).code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(copier == nullptr);
}

// The stream is blocked by a host function while Copy returns, its entries are
// destroyed and their memory reused; the copy must still use the descriptors it was
// given, and run after the memset enqueued before it.
TEST_F(BatchedCopyApiTest, RunsInStreamOrderAndKeepsNoReferenceToEntries) {
  const int n = 300;  // the large parameter block
  auto src = Region::Create(n * 64 * 4);
  auto dst = Region::Create(n * 64 * 4);
  ASSERT_TRUE(src && dst);
  std::atomic<bool> release{false};
  auto wait = [](void* flag) {
    while (!static_cast<std::atomic<bool>*>(flag)->load()) std::this_thread::yield();
  };
  ASSERT_EQ(cudaLaunchHostFunc(stream_, wait, &release), cudaSuccess);
  ASSERT_EQ(cudaMemsetAsync(src->device(0), 0x5a, src->host().size(), stream_), cudaSuccess);
  {
    auto entries = std::make_unique<std::vector<CopyEntry>>();
    for (int i = 0; i < n; ++i) {
      entries->push_back({src->device(i * 256), dst->device(i * 256), 64});
    }
    Status st = copier_->Copy(*entries, DataType::kFloat32, 0.5, stream_);
    ASSERT_TRUE(st.ok()) << st.ToString();
    std::fill(entries->begin(), entries->end(), CopyEntry{});
  }
  std::vector<CopyEntry> reuse(n, CopyEntry{nullptr, nullptr, 1 << 30});
  release = true;
  ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
  std::vector<uint8_t> got;
  ASSERT_TRUE(dst->Download(&got));
  const uint32_t pattern = 0x5a5a5a5au;
  float want = 0;
  std::memcpy(&want, &pattern, 4);
  want = static_cast<float>(static_cast<double>(want) * 0.5);
  std::vector<float> values(got.size() / 4);
  std::memcpy(values.data(), got.data(), got.size());
  for (size_t i = 0; i < values.size(); ++i) ASSERT_EQ(values[i], want) << "element " << i;
}

// Any synchronising call inside Copy would invalidate the capture; the graph must
// then replay the copy.
TEST_F(BatchedCopyApiTest, CanBeCapturedIntoACudaGraph) {
  const std::vector<int64_t> counts = MixedCounts(1500, 3);
  const Layout l = Pack(counts, 4, 16, "1500 mixed");
  auto src = Region::Create(l.src_elems * 4);
  auto dst = Region::Create(l.dst_elems * 4);
  ASSERT_TRUE(src && dst);
  FillRandom(&src->host(), DataType::kFloat32, 4);
  FillRandom(&dst->host(), DataType::kFloat32, 5);
  ASSERT_TRUE(src->Upload() && dst->Upload());
  std::vector<CopyEntry> entries;
  for (const Placement& e : l.entries) {
    entries.push_back({src->device(e.src * 4), dst->device(e.dst * 4), e.count});
  }
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  Status st = copier_->Copy(entries, DataType::kFloat32, Scaling{0.25, 1}, stream_);
  ASSERT_EQ(cudaStreamEndCapture(stream_, &graph), cudaSuccess);
  ASSERT_TRUE(st.ok()) << st.ToString();
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  ASSERT_EQ(cudaGraphLaunch(exec, stream_), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
  std::vector<uint8_t> want = dst->host();
  std::vector<uint8_t> got;
  Reference(l, DataType::kFloat32, Scaling{0.25, 1}, false, src->host(), &want);
  ASSERT_TRUE(dst->Download(&got));
  EXPECT_EQ(FirstDifference(want, got, 4), "");
  EXPECT_EQ(cudaGraphExecDestroy(exec), cudaSuccess);
  EXPECT_EQ(cudaGraphDestroy(graph), cudaSuccess);
}

}  // namespace
}  // namespace braid::cuda::test
