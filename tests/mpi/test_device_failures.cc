// Failures on one rank before a device collective, on the fake device plane
// (tests/mpi/fake_device_plane.h): an output allocation, the fusion buffer, a
// copy, the backend's staging, a joined rank's stand-in, the device plane's
// set-up. Each is injected on the last rank only. Every rank must then fail that
// collective with the same message naming the failing rank, none may wait for
// it or finish with a result, and the engine must stay usable. Also: the device
// plane is set up when the ranks agree on their first GPU collective, and a
// later tensor on another GPU of one rank is an error on every rank.
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/mpi/c_api_test_util.h"
#include "tests/mpi/fake_device_plane.h"

namespace {

using ctu::Handle;
using ctu::Tensor;

// Registered before main() runs the tests, so no engine ever loads the CUDA plugin.
const bool kRegistered = [] {
  fake::RegisterFakeDevicePlugin();
  return true;
}();

// Rank 0's text on every rank.
std::string RankZeros(const std::string& mine) {
  int length = static_cast<int>(mine.size());
  MPI_Bcast(&length, 1, MPI_INT, 0, MPI_COMM_WORLD);
  std::string theirs = mine;
  theirs.resize(static_cast<size_t>(length));
  MPI_Bcast(&theirs[0], length, MPI_CHAR, 0, MPI_COMM_WORLD);
  return theirs;
}

class DeviceFailures : public ctu::BraidTest {
 protected:
  // The rank each test injects its failure on.
  int Victim() const { return size_ - 1; }
  bool IsVictim() const { return rank_ == Victim(); }

  // The handle failed here with the same code and message as on rank 0, and the
  // message names the failing rank and the injected cause.
  void ExpectSameFailureEverywhere(Handle& h, const std::string& cause) {
    const int rc = h.Wait();
    const std::string message = h.Error();
    EXPECT_EQ(rc, BRAID_ERR_BACKEND) << "rank " << rank_ << ": " << message;
    EXPECT_EQ(message, RankZeros(message)) << "rank " << rank_;
    const std::string expected =
        "rank " + std::to_string(Victim()) + ": injected failure: " + cause;
    EXPECT_NE(message.find(expected), std::string::npos) << "rank " << rank_ << ": " << message;
  }

  // A device allreduce (and a host one) still work afterwards.
  void ExpectUsable(int device = 0) {
    EXPECT_TRUE(ctu::EngineUsable());
    Tensor t(BRAID_FLOAT32, {7}, device);
    t.Fill([&](int64_t i) { return ctu::SmallValue(BRAID_FLOAT32, rank_, i); });
    Handle h;
    const std::string name = ctu::UniqueName("device.usable");
    ASSERT_EQ(braid_allreduce_async(name.c_str(), t.desc(), t.data(), BRAID_SUM, 1.0, 1.0, h.out()),
              BRAID_OK)
        << braid_last_error();
    ASSERT_EQ(h.Wait(), BRAID_OK) << h.Error();
    EXPECT_TRUE(ctu::MatchesValues(t, [&](int64_t i) {
      return ctu::ExpectedAllreduce(BRAID_FLOAT32, BRAID_SUM, size_, i, 1.0, 1.0);
    }));
  }

  void Inject(std::atomic<int>& counter) {
    if (IsVictim()) counter = 1;
  }
  // Clears what a test injected but no call consumed (a failed test).
  void TearDown() override {
    fake::Faults& f = fake::InjectedFaults();
    for (std::atomic<int>* c :
         {&f.create_plane, &f.allocate, &f.fusion_buffer, &f.copies, &f.prepare})
      *c = 0;
  }
};

TEST_F(DeviceFailures, AnAllgatherOutputThatCannotBeAllocatedFailsEverywhere) {
  ExpectUsable();  // the plane is set up before the failure
  Inject(fake::InjectedFaults().allocate);
  Tensor t(BRAID_FLOAT32, {rank_ + 1, 3}, 0);
  Handle h;
  const std::string name = ctu::UniqueName("gather");
  ASSERT_EQ(braid_allgather_async(name.c_str(), t.desc(), h.out()), BRAID_OK) << braid_last_error();
  ExpectSameFailureEverywhere(h, "out of device memory");
  ExpectUsable();
}

TEST_F(DeviceFailures, ACopyThatCannotBeQueuedFailsAnAllreduceEverywhere) {
  ExpectUsable();
  Inject(fake::InjectedFaults().copies);
  Tensor in(BRAID_FLOAT32, {33}, 0), out(BRAID_FLOAT32, {33}, 0);
  in.Fill([](int64_t) { return 1.0; });
  out.Fill([](int64_t) { return -5.0; });
  Handle h;
  const std::string name = ctu::UniqueName("out_of_place");
  ASSERT_EQ(
      braid_allreduce_async(name.c_str(), in.desc(), out.data(), BRAID_SUM, 1.0, 1.0, h.out()),
      BRAID_OK)
      << braid_last_error();
  ExpectSameFailureEverywhere(h, "the copy could not be queued");
  ExpectUsable();
}

TEST_F(DeviceFailures, StagingThatCannotBeSetUpFailsABroadcastEverywhere) {
  ExpectUsable();
  Inject(fake::InjectedFaults().prepare);
  Tensor t(BRAID_INT32, {5}, 0);
  t.Fill([&](int64_t i) { return rank_ * 10 + i; });
  Handle h;
  const std::string name = ctu::UniqueName("bcast");
  ASSERT_EQ(braid_broadcast_async(name.c_str(), t.desc(), 0, h.out()), BRAID_OK)
      << braid_last_error();
  ExpectSameFailureEverywhere(h, "no staging memory");
  ExpectUsable();
}

// Two tensors fused into one group need the device fusion buffer. The
// coordinator is held inside a collective (its producer stream gated) while
// both are submitted, so that its next round takes them together.
TEST_F(DeviceFailures, AFusionBufferThatCannotBeSetUpFailsTheGroupEverywhere) {
  ExpectUsable();
  std::vector<std::unique_ptr<Tensor>> tensors;
  for (int i = 0; i < 3; ++i)
    tensors.push_back(std::make_unique<Tensor>(i == 0 ? BRAID_FLOAT64 : BRAID_FLOAT32,
                                               std::vector<int64_t>{16}, 0));
  fake::Stream gated;
  auto gate = std::make_shared<fake::Mark>();
  gated.WaitFor(gate);
  braid_tensor_t blocker_desc = *tensors[0]->desc();
  blocker_desc.stream = &gated;
  Handle blocker, a, b;
  const int entered = fake::CollectivesEntered();
  const std::string blocker_name = ctu::UniqueName("blocker");
  ASSERT_EQ(braid_allreduce_async(blocker_name.c_str(), &blocker_desc, tensors[0]->data(),
                                  BRAID_SUM, 1.0, 1.0, blocker.out()),
            BRAID_OK);
  while (fake::CollectivesEntered() == entered)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  Inject(fake::InjectedFaults().fusion_buffer);
  const std::string name_a = ctu::UniqueName("a"), name_b = ctu::UniqueName("b");
  ASSERT_EQ(braid_allreduce_async(name_a.c_str(), tensors[1]->desc(), tensors[1]->data(), BRAID_SUM,
                                  1.0, 1.0, a.out()),
            BRAID_OK);
  ASSERT_EQ(braid_allreduce_async(name_b.c_str(), tensors[2]->desc(), tensors[2]->data(), BRAID_SUM,
                                  1.0, 1.0, b.out()),
            BRAID_OK);
  gate->Reach();
  EXPECT_EQ(blocker.Wait(), BRAID_OK) << blocker.Error();
  ExpectSameFailureEverywhere(a, "no device fusion buffer");
  ExpectSameFailureEverywhere(b, "no device fusion buffer");
  gated.Drain();
  ExpectUsable();
}

// The last rank has joined and stands in for the others' device allreduce with
// zeros it cannot allocate.
TEST_F(DeviceFailures, AJoinedRanksStandInThatCannotBeAllocatedFailsEverywhere) {
  CTU_REQUIRE_RANKS(2);
  ExpectUsable();
  Inject(fake::InjectedFaults().allocate);
  const std::string name = ctu::UniqueName("while_joined");  // same count on every rank
  if (IsVictim()) {
    MPI_Barrier(MPI_COMM_WORLD);  // the others submit once this rank has joined
    int last = -1;
    // The join itself completes once everyone has joined.
    EXPECT_EQ(braid_join(&last), BRAID_OK) << braid_last_error();
    EXPECT_EQ(fake::InjectedFaults().allocate, 0) << "the stand-in never allocated";
  } else {
    // Wait until the victim's join is under way: it joins right after the barrier.
    MPI_Barrier(MPI_COMM_WORLD);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    Tensor t(BRAID_FLOAT32, {9}, 0);
    Handle h;
    ASSERT_EQ(braid_allreduce_async(name.c_str(), t.desc(), t.data(), BRAID_SUM, 1.0, 1.0, h.out()),
              BRAID_OK);
    const int rc = h.Wait();
    EXPECT_EQ(rc, BRAID_ERR_BACKEND) << h.Error();
    const std::string expected =
        "rank " + std::to_string(Victim()) + ": injected failure: out of device memory";
    EXPECT_NE(std::string(h.Error()).find(expected), std::string::npos) << h.Error();
    int last = -1;
    EXPECT_EQ(braid_join(&last), BRAID_OK) << braid_last_error();
  }
  ExpectUsable();
}

// A fresh engine whose first device collective cannot set up the last rank's
// plane: every rank fails it, and every later device collective, with the same
// message; host collectives go on.
TEST_F(DeviceFailures, ADevicePlaneThatCannotBeSetUpFailsEverywhere) {
  braid_shutdown();
  ctu::ScopedEnv env(ctu::EnvList{{"BRAID_CACHE_CAPACITY", "512"}});
  ASSERT_EQ(braid_init(), BRAID_OK) << braid_last_error();
  Inject(fake::InjectedFaults().create_plane);
  for (int attempt = 0; attempt < 2; ++attempt) {
    Tensor t(BRAID_FLOAT32, {4}, 0);
    Handle h;
    const std::string name = ctu::UniqueName("first_gpu");
    ASSERT_EQ(braid_allreduce_async(name.c_str(), t.desc(), t.data(), BRAID_SUM, 1.0, 1.0, h.out()),
              BRAID_OK);
    ExpectSameFailureEverywhere(h, "the device plane could not be set up");
  }
  EXPECT_TRUE(ctu::EngineUsable());
}

// Ranks may use different GPUs, one each (here rank r uses GPU r), fixed by the
// first GPU collective; a later tensor of one rank on another GPU is refused in
// negotiation, on every rank, with a message naming the rank and both GPUs.
TEST_F(DeviceFailures, ATensorOnAnotherGpuOfOneRankIsAnErrorEverywhere) {
  braid_shutdown();
  ctu::ScopedEnv env(ctu::EnvList{{"BRAID_CACHE_CAPACITY", "256"}});
  ASSERT_EQ(braid_init(), BRAID_OK) << braid_last_error();
  for (int repeat = 0; repeat < 3; ++repeat) ExpectUsable(rank_);  // cached after the first
  const int elsewhere = IsVictim() ? rank_ + 10 : rank_;
  Tensor t(BRAID_FLOAT32, {4}, elsewhere);
  Handle h;
  const std::string name = ctu::UniqueName("moved");
  ASSERT_EQ(braid_allreduce_async(name.c_str(), t.desc(), t.data(), BRAID_SUM, 1.0, 1.0, h.out()),
            BRAID_OK);
  const int rc = h.Wait();
  const std::string message = h.Error();
  EXPECT_EQ(rc, BRAID_ERR_INVALID_ARGUMENT) << message;
  EXPECT_EQ(message, RankZeros(message));
  const std::string expected = "rank " + std::to_string(Victim()) +
                               " has it on cuda:" + std::to_string(Victim() + 10) +
                               " but its GPU data plane is on cuda:" + std::to_string(Victim());
  EXPECT_NE(message.find(expected), std::string::npos) << message;
  ExpectUsable(rank_);
}

}  // namespace
