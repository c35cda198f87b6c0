// The error memory's kernels (ops/compress/memory.h) against plain loops: the
// fused error-feedback pass and the sent step.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "compress_test_util.h"
#include "ops/compress/memory.h"
#include "ops/compress/selection.h"

namespace braid::compress {
namespace {

using test_util::FillNormal;
using test_util::Indices;
using test_util::Values;

// The pass as a plain loop, in the documented arithmetic: float for the 16-bit
// dtypes (rounded once when stored), the dtype's own otherwise, (e + a*g) + b*d.
void ReferenceFeedback(Values* e, const Values& g, const Values* d, double a, double b) {
  for (int64_t i = 0; i < e->n(); ++i) {
    if (e->dtype() == DataType::kFloat64) {
      double v = e->Get(i) + a * g.Get(i);
      if (d != nullptr) v = v + b * d->Get(i);
      e->Set(i, v);
    } else {
      const float fa = static_cast<float>(a), fb = static_cast<float>(b);
      volatile float ag = fa * static_cast<float>(g.Get(i));  // no contraction into an FMA
      float v = static_cast<float>(e->Get(i)) + ag;
      if (d != nullptr) {
        volatile float bd = fb * static_cast<float>(d->Get(i));
        v = v + bd;
      }
      e->Set(i, v);
    }
  }
}

TEST(CompressMemory, ErrorFeedbackMatchesAPlainLoop) {
  for (DataType dtype : test_util::kValueTypes) {
    for (int64_t n : {0, 1, 1001, 3000000}) {
      for (bool with_d : {false, true}) {
        SCOPED_TRACE(std::string(DataTypeName(dtype)) + " n=" + std::to_string(n) +
                     (with_d ? " with d" : ""));
        Values e(dtype, n), g(dtype, n), d(dtype, n), expected(dtype, n);
        FillNormal(&e, 1);
        FillNormal(&g, 2);
        FillNormal(&d, 3);
        for (int64_t i = 0; i < n; ++i) expected.Set(i, e.Get(i));
        const double a = -0.1, b = 0.9;
        ReferenceFeedback(&expected, g, with_d ? &d : nullptr, a, b);
        BufferView dv = with_d ? d.View() : BufferView{};
        Status st = ErrorFeedback(e.View(), g.View(), dv, a, b, 3);
        ASSERT_TRUE(st.ok()) << st.message();
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(e.Raw(i), expected.Raw(i)) << i;
      }
    }
  }
}

TEST(CompressMemory, ErrorFeedbackChecksItsBuffers) {
  Values e(DataType::kFloat32, 10), g(DataType::kFloat32, 9), g64(DataType::kFloat64, 10);
  Values ok(DataType::kFloat32, 10);
  EXPECT_FALSE(ErrorFeedback(e.View(), g.View(), BufferView{}, 1, 0).ok());
  EXPECT_FALSE(ErrorFeedback(e.View(), g64.View(), BufferView{}, 1, 0).ok());
  EXPECT_FALSE(ErrorFeedback(e.View(), ok.View(), g.View(), 1, 1).ok());
  EXPECT_TRUE(ErrorFeedback(e.View(), ok.View(), BufferView{}, 1, 0).ok());
}

TEST(CompressMemory, ExtractSentGathersAndZeroesTheMemory) {
  for (DataType dtype : test_util::kValueTypes) {
    for (DataType index : test_util::kIndexTypes) {
      const int64_t n = 5000, k = 50;
      Values e(dtype, n), before(dtype, n);
      FillNormal(&e, 4);
      for (int64_t i = 0; i < n; ++i) before.Set(i, e.Get(i));
      // Select with top-k, as a step of top-k with memory does.
      Indices idx(index, k);
      Values sent(dtype, k);
      ASSERT_TRUE(TopK(e.View(), k, idx.View(), BufferView{}).ok());
      ASSERT_TRUE(ExtractSent(e.View(), idx.View(), sent.View()).ok());
      std::vector<bool> selected(n, false);
      for (int64_t j = 0; j < k; ++j) {
        selected[idx.Get(j)] = true;
        EXPECT_EQ(sent.Raw(j), before.Raw(idx.Get(j)));
      }
      for (int64_t i = 0; i < n; ++i) {
        if (selected[i]) {
          EXPECT_EQ(e.Get(i), 0.0);
        } else {
          EXPECT_EQ(e.Raw(i), before.Raw(i));
        }
      }
    }
  }
}

TEST(CompressMemory, ExtractSentRefusesIndicesOutOfRangeBeforeWriting) {
  Values e(DataType::kFloat32, 10);
  for (int64_t i = 0; i < 10; ++i) e.Set(i, 1.0 + i);
  Indices idx(DataType::kInt64, 3);
  auto* p = static_cast<int64_t*>(idx.View().data);
  p[0] = 1;
  p[1] = 4;
  p[2] = 10;
  EXPECT_FALSE(ExtractSent(e.View(), idx.View(), BufferView{}).ok());
  for (int64_t i = 0; i < 10; ++i) EXPECT_EQ(e.Get(i), 1.0 + i);
  p[2] = 9;
  ASSERT_TRUE(ExtractSent(e.View(), idx.View(), BufferView{}).ok());
  EXPECT_EQ(e.Get(1), 0.0);
  EXPECT_EQ(e.Get(4), 0.0);
  EXPECT_EQ(e.Get(9), 0.0);
  EXPECT_EQ(e.Get(2), 3.0);
}

}  // namespace
}  // namespace braid::compress
