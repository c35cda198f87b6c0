// The pending table: a request is handed to the executor only once the
// coordinator has taken it into negotiation.
#include <gtest/gtest.h>

#include "core/tensor_queue.h"

namespace braid {
namespace {

Request Named(const std::string& name) {
  Request r;
  r.meta.name = name;
  r.meta.shape = {1};
  r.handle = std::make_shared<Handle>();
  return r;
}

TEST(TensorQueue, TakesOnlyRequestsTakenIntoNegotiation) {
  TensorQueue queue;
  ASSERT_TRUE(queue.Add(Named("a")).ok());
  Request out;
  EXPECT_FALSE(queue.Take("a", &out)) << "'a' was never negotiated";
  std::vector<RequestMeta> fresh = queue.TakeNew();
  ASSERT_EQ(fresh.size(), 1u);
  EXPECT_EQ(fresh[0].name, "a");
  // Added after the round took its new requests: not part of that round.
  ASSERT_TRUE(queue.Add(Named("b")).ok());
  EXPECT_FALSE(queue.Take("b", &out));
  ASSERT_TRUE(queue.Take("a", &out));
  EXPECT_EQ(out.meta.name, "a");
  EXPECT_FALSE(queue.Take("a", &out)) << "taken twice";
  EXPECT_EQ(queue.TakeNew().size(), 1u);
  EXPECT_TRUE(queue.Take("b", &out));
  EXPECT_EQ(queue.pending(), 0u);
}

TEST(TensorQueue, RefusesADuplicateNameUntilTaken) {
  TensorQueue queue;
  ASSERT_TRUE(queue.Add(Named("a")).ok());
  EXPECT_EQ(queue.Add(Named("a")).code(), StatusCode::kDuplicateName);
  queue.TakeNew();
  Request out;
  ASSERT_TRUE(queue.Take("a", &out));
  EXPECT_TRUE(queue.Add(Named("a")).ok());
}

TEST(TensorQueue, CloseFailsEveryPendingRequest) {
  TensorQueue queue;
  Request a = Named("a"), b = Named("b");
  std::shared_ptr<Handle> ha = a.handle, hb = b.handle;
  ASSERT_TRUE(queue.Add(std::move(a)).ok());
  queue.TakeNew();
  ASSERT_TRUE(queue.Add(std::move(b)).ok());
  queue.Close(Status(StatusCode::kAborted, "closed"));
  EXPECT_EQ(ha->Wait().code(), StatusCode::kAborted);
  EXPECT_EQ(hb->Wait().code(), StatusCode::kAborted);
  Status refused = queue.Add(Named("c"));
  EXPECT_EQ(refused.code(), StatusCode::kAborted);
  EXPECT_NE(refused.message().find("init again"), std::string::npos) << refused.message();
}

}  // namespace
}  // namespace braid
