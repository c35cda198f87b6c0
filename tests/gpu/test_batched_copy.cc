// BatchedCopier against the host data plane: every dtype, sizes 0 / 1 / 17 /
// 1000003, mixed sizes over 200 entries packed and unpacked, unaligned offsets,
// batches split across launches, scale 1 / 0.5 / 1/3, in place and out of place.
//
// The expected bytes are cpu::ScaleCopy (and cpu::DivideBy) run on the same input,
// and the comparison is bitwise for scaled results too: the kernel performs the
// host's arithmetic operation for operation (IEEE double products and quotients,
// round-to-nearest narrowing, clamped truncation), so any difference is a bug. The
// inputs are finite (scaled NaN payloads are allowed to differ; see
// test_batched_copy_api.cc for special values). The whole target buffer is
// compared, so bytes between entries must come back untouched.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/gpu/batched_copy_test_util.h"

namespace braid::cuda::test {
namespace {

class BatchedCopyTest : public CopierFixture<::testing::TestWithParam<DataType>> {
 protected:
  DataType dtype() const { return GetParam(); }
  int64_t size() const { return static_cast<int64_t>(DataTypeSize(dtype())); }

  // Runs the layout on the device and on the host from the same bytes.
  void Check(const Layout& l, const Scaling& s, bool in_place) {
    SCOPED_TRACE(l.name + ", factor " + std::to_string(s.factor) + ", divisor " +
                 std::to_string(s.divisor) + (in_place ? ", in place" : ", out of place"));
    auto src = Region::Create(l.src_elems * size());
    auto dst = in_place ? nullptr : Region::Create(l.dst_elems * size());
    ASSERT_TRUE(src != nullptr && (in_place || dst != nullptr));
    Region* target = in_place ? src.get() : dst.get();
    FillRandom(&src->host(), dtype(), 1);
    if (!in_place) FillRandom(&dst->host(), dtype(), 2);
    ASSERT_TRUE(src->Upload());
    ASSERT_TRUE(in_place || dst->Upload());

    std::vector<CopyEntry> entries;
    for (const Placement& e : l.entries) {
      const int64_t at = in_place ? e.src : e.dst;
      entries.push_back({src->device(e.src * size()), target->device(at * size()), e.count});
    }
    Status st = copier_->Copy(entries, dtype(), s, stream_);
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);

    std::vector<uint8_t> want = target->host();
    std::vector<uint8_t> got;
    Reference(l, dtype(), s, in_place, src->host(), &want);
    ASSERT_TRUE(target->Download(&got));
    EXPECT_EQ(FirstDifference(want, got, static_cast<size_t>(size())), "");
  }

  void Sweep(const Layout& l) {
    for (double factor : {1.0, 0.5, 1.0 / 3.0}) {
      for (bool in_place : {false, true}) Check(l, Scaling{factor, 1}, in_place);
    }
  }
};

TEST_P(BatchedCopyTest, SingleEntryOfEachSize) {
  for (int64_t count : {0, 1, 17, 1000003}) Sweep(Single(count, 0, 0));
}

// Shifts by whole elements: src and dst disagree modulo 16 (narrow words or single
// elements), or agree without being 16-byte aligned (a head before the vectors).
TEST_P(BatchedCopyTest, UnalignedOffsets) {
  const std::vector<std::pair<int64_t, int64_t>> shifts = {{1, 0}, {0, 1}, {1, 1},
                                                           {3, 5}, {2, 6}, {0, 8}};
  for (const auto& [src_shift, dst_shift] : shifts) {
    for (int64_t count : {1, 17, 70001}) Sweep(Single(count, src_shift, dst_shift));
  }
}

TEST_P(BatchedCopyTest, MixedSizesPackedAndUnpacked) {
  const std::vector<int64_t> counts = MixedCounts(200, 11 + static_cast<uint64_t>(dtype()));
  for (int64_t pad : {size(), int64_t{16}}) {
    const Layout pack = Pack(counts, static_cast<size_t>(size()), pad, "200 mixed");
    Sweep(pack);
    Sweep(Unpack(pack));
  }
}

// 64 / 65 and 256 / 257 straddle the parameter block sizes, 1000 / 1001 and 2345
// the split into several launches.
TEST_P(BatchedCopyTest, ManyEntriesSplitAcrossLaunches) {
  for (int n : {64, 65, 256, 257, 1000, 1001, 2345}) {
    std::vector<int64_t> counts = MixedCounts(n, static_cast<uint64_t>(n));
    for (auto& c : counts) c %= 41;  // small entries, some empty
    Sweep(Pack(counts, static_cast<size_t>(size()), size(), std::to_string(n) + " small"));
  }
}

// Unpacking an average: postscale folded in, integers divided as the host does.
TEST_P(BatchedCopyTest, AverageMatchesHostScaleThenDivide) {
  const Layout pack = Pack(MixedCounts(200, 5), static_cast<size_t>(size()), 16, "200 mixed");
  const Layout unpack = Unpack(pack);
  for (const Scaling& s : {Scaling{1.0, 3}, Scaling{0.5, 7}, Scaling{1.0 / 3.0, 49}}) {
    Check(unpack, s, false);
    Check(pack, s, true);
  }
}

std::string TypeName(const ::testing::TestParamInfo<DataType>& info) {
  return DataTypeName(info.param);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, BatchedCopyTest,
                         ::testing::Values(DataType::kUInt8, DataType::kInt8, DataType::kInt32,
                                           DataType::kInt64, DataType::kFloat16,
                                           DataType::kBFloat16, DataType::kFloat32,
                                           DataType::kFloat64),
                         TypeName);

}  // namespace
}  // namespace braid::cuda::test
