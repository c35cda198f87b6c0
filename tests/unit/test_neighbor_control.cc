// The neighbour collectives' control plane, one process: the graph lists checked
// on one rank (ValidateRequest, ValidateNeighborWeights), across ranks
// (negotiation names the edges that do not match), on the wire and in the
// response cache (a rank hits only with the lists the ranks agreed on), and how a
// group's messages are laid out (PlanNeighbors).
#include <gtest/gtest.h>

#include <limits>

#include "core/message_table.h"
#include "core/neighbor_plan.h"
#include "core/response_cache.h"
#include "core/wire.h"

namespace braid {
namespace {

RequestMeta Neighbor(std::vector<int32_t> send_to, std::vector<int32_t> recv_from) {
  RequestMeta m;
  m.name = "x";
  m.collective = Collective::kNeighborAllreduce;
  m.dtype = DataType::kFloat32;
  m.shape = {4};
  m.send_to = std::move(send_to);
  m.recv_from = std::move(recv_from);
  return m;
}

// The ring at n = 4: i <-> i +- 1.
std::vector<RequestMeta> Ring4() {
  return {Neighbor({1, 3}, {1, 3}), Neighbor({0, 2}, {0, 2}), Neighbor({1, 3}, {1, 3}),
          Neighbor({0, 2}, {0, 2})};
}

Response Negotiate(const std::vector<RequestMeta>& by_rank) {
  MessageTable table(static_cast<int>(by_rank.size()));
  for (size_t r = 0; r < by_rank.size(); ++r)
    table.Add(static_cast<int>(r), by_rank[r], Clock::now());
  return table.TakeResponse("x");
}

TEST(NeighborRequest, ListsAreCheckedOnThisRank) {
  EXPECT_TRUE(ValidateRequest(Neighbor({1, 3}, {1, 3}), 4).ok());
  EXPECT_NE(ValidateRequest(Neighbor({3, 1}, {}), 4).message().find("ascending"),
            std::string::npos);
  EXPECT_NE(ValidateRequest(Neighbor({1, 1}, {}), 4).message().find("without repeats"),
            std::string::npos);
  EXPECT_NE(ValidateRequest(Neighbor({}, {4}), 4).message().find("not in [0, 4)"),
            std::string::npos);
  RequestMeta ints = Neighbor({}, {});
  ints.dtype = DataType::kInt32;
  EXPECT_FALSE(ValidateRequest(ints, 4).ok());
  ints.collective = Collective::kNeighborExchange;
  EXPECT_TRUE(ValidateRequest(ints, 4).ok());
  RequestMeta allreduce = Neighbor({1}, {});
  allreduce.collective = Collective::kAllreduce;
  EXPECT_NE(ValidateRequest(allreduce, 4).message().find("only neighbour collectives"),
            std::string::npos);
}

TEST(NeighborRequest, WeightsMatchTheListAndNotThisRank) {
  Request r;
  r.meta = Neighbor({1}, {1, 3});
  r.recv_weights = {0.25};
  EXPECT_NE(ValidateNeighborWeights(r, 0).message().find("1 weights for 2 ranks"),
            std::string::npos);
  r.recv_weights = {0.25, 0.25};
  EXPECT_TRUE(ValidateNeighborWeights(r, 0).ok());
  EXPECT_NE(ValidateNeighborWeights(r, 1).message().find("itself"), std::string::npos);
  r.self_weight = std::numeric_limits<double>::infinity();
  EXPECT_FALSE(ValidateNeighborWeights(r, 0).ok());
}

TEST(NeighborNegotiation, ConsistentGraphAgreesAndKeepsEveryRanksLists) {
  const std::vector<RequestMeta> ring = Ring4();
  Response r = Negotiate(ring);
  ASSERT_FALSE(r.is_error()) << r.error;
  for (int rank = 0; rank < 4; ++rank) {
    std::vector<int32_t> send, recv;
    ASSERT_TRUE(GraphOf(r, rank, &send, &recv));
    EXPECT_EQ(send, ring[rank].send_to);
    EXPECT_EQ(recv, ring[rank].recv_from);
    EXPECT_TRUE(ResponseMatches(r, ring[rank], rank));
  }
  std::vector<int32_t> send, recv;
  EXPECT_FALSE(GraphOf(r, 4, &send, &recv));
  // A rank whose lists changed misses the cached response.
  EXPECT_FALSE(ResponseMatches(r, Neighbor({1}, {1, 3}), 0));
  EXPECT_FALSE(ResponseMatches(r, ring[1], 0));
}

TEST(NeighborNegotiation, InconsistentGraphNamesTheEdges) {
  std::vector<RequestMeta> g = Ring4();
  g[2].recv_from = {3};  // rank 1 still sends to 2
  g[0].send_to = {1};    // rank 3 still expects rank 0
  Response r = Negotiate(g);
  ASSERT_EQ(r.error_code, StatusCode::kMismatch);
  EXPECT_NE(r.error.find("Inconsistent neighbour graph for 'x'"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("rank 1 sends to rank 2 but rank 2 does not receive from rank 1"),
            std::string::npos)
      << r.error;
  EXPECT_NE(r.error.find("rank 3 receives from rank 0 but rank 0 does not send to rank 3"),
            std::string::npos)
      << r.error;
}

TEST(NeighborNegotiation, ShapesStillMustAgree) {
  std::vector<RequestMeta> g = Ring4();
  g[3].shape = {5};
  Response r = Negotiate(g);
  ASSERT_EQ(r.error_code, StatusCode::kMismatch);
  EXPECT_NE(r.error.find("Mismatched shapes"), std::string::npos) << r.error;
}

TEST(NeighborNegotiation, JoinedRanksAreRefused) {
  MessageTable table(2);
  table.SetJoined({false, true});
  ASSERT_TRUE(table.Add(0, Neighbor({}, {}), Clock::now()));
  Response r = table.TakeResponse("x");
  ASSERT_TRUE(r.is_error());
  EXPECT_NE(r.error.find("not supported while ranks are joined"), std::string::npos) << r.error;
}

TEST(NeighborWire, ListsAndGraphRoundTrip) {
  Response r = Negotiate(Ring4());
  std::vector<Response> back;
  ASSERT_TRUE(DecodeResponses(EncodeResponses({r}), &back).ok());
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].graph, r.graph);
  EXPECT_EQ(back[0].meta.send_to, r.meta.send_to);
  std::vector<RequestMeta> metas;
  ASSERT_TRUE(DecodeRequests(EncodeRequests({Neighbor({0, 2}, {3})}), &metas).ok());
  EXPECT_EQ(metas[0], Neighbor({0, 2}, {3}));
}

TEST(NeighborPlan, SingleTensorSendsFromItsInput) {
  std::vector<int32_t> send{1, 3}, recv{3};
  NeighborPlan p = PlanNeighbors({{40, &send, &recv}});
  EXPECT_EQ(p.send_layout, NeighborPlan::SendLayout::kDirect);
  EXPECT_EQ(p.send_area_bytes, 0);
  ASSERT_EQ(p.sends.size(), 2u);
  EXPECT_EQ(p.sends[1].peer, 3);
  EXPECT_EQ(p.recv_area_bytes, 40);
  EXPECT_EQ(p.RecvOffset(0, 3), 0);
  EXPECT_EQ(p.RecvOffset(0, 1), -1);
}

TEST(NeighborPlan, SameSendsShareOnePackedBuffer) {
  std::vector<int32_t> peers{0, 2}, recv_a{0}, recv_b{0, 2};
  NeighborPlan p = PlanNeighbors({{8, &peers, &recv_a}, {16, &peers, &recv_b}});
  EXPECT_EQ(p.send_layout, NeighborPlan::SendLayout::kShared);
  EXPECT_EQ(p.send_area_bytes, 80);  // the second tensor at 64
  for (const NeighborMessage& m : p.sends) {
    EXPECT_EQ(m.offset, 0);
    EXPECT_EQ(m.bytes, 80);
  }
  // From rank 0 both tensors, from rank 2 tensor 1 alone, at the next 256 bytes.
  ASSERT_EQ(p.recvs.size(), 2u);
  EXPECT_EQ(p.recvs[0].bytes, 80);
  EXPECT_EQ(p.recvs[1].offset, 256);
  EXPECT_EQ(p.RecvOffset(0, 0), 0);
  EXPECT_EQ(p.RecvOffset(1, 0), 64);
  EXPECT_EQ(p.RecvOffset(1, 2), 256);
  EXPECT_EQ(p.RecvOffset(0, 2), -1);
  EXPECT_EQ(p.recv_area_bytes, 272);
  EXPECT_EQ(p.staged_bytes, 272 + 80);
}

TEST(NeighborPlan, DifferentSendsArePackedPerPeer) {
  std::vector<int32_t> to1{1}, to12{1, 2}, none;
  NeighborPlan p = PlanNeighbors({{8, &to12, &none}, {4, &to1, &none}});
  EXPECT_EQ(p.send_layout, NeighborPlan::SendLayout::kPerPeer);
  ASSERT_EQ(p.sends.size(), 2u);
  EXPECT_EQ(p.sends[0].bytes, 68);  // to rank 1: both, the second at 64
  EXPECT_EQ(p.sends[0].tensor_offsets, (std::vector<int64_t>{0, 64}));
  EXPECT_EQ(p.sends[1].offset, 256);
  EXPECT_EQ(p.sends[1].bytes, 8);  // to rank 2: the first
  EXPECT_EQ(p.send_area_bytes, 264);
  EXPECT_EQ(p.recv_area_bytes, 0);
}

TEST(NeighborPlan, AStandAloneTensorIsStagedOnce) {
  std::vector<int32_t> peers{1, 2, 3};
  NeighborPlan p = PlanNeighbors({{100, &peers, &peers}});
  EXPECT_EQ(p.send_layout, NeighborPlan::SendLayout::kDirect);
  EXPECT_EQ(p.recv_area_bytes, 256 * 2 + 100);
  EXPECT_EQ(p.staged_bytes, p.recv_area_bytes + 100);
  // A neighbour exchange's receive area is its output: blocks back to back.
  NeighborPlan packed = PlanNeighbors({{100, &peers, &peers}}, /*packed_recvs=*/true);
  EXPECT_EQ(packed.recv_area_bytes, 300);
  EXPECT_EQ(packed.RecvOffset(0, 2), 100);
}

}  // namespace
}  // namespace braid
