// The shared-memory host backend (collectives/shm/) on its own control channel,
// with tiny slots so that every collective crosses many chunks: allreduce of
// every dtype and op around chunk boundaries and past the segment, fused groups,
// 16-bit sums rounded once, allgatherv with empty blocks, broadcast from every
// root, neighbour exchange, barrier; the segment's name is gone from /dev/shm;
// how BRAID_HOST_BACKEND chooses, and what happens when the segment cannot be made.
#include <dirent.h>
#include <gtest/gtest.h>
#include <mpi.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "collectives/mpi/mpi_backend.h"
#include "collectives/mpi/mpi_control.h"
#include "collectives/shm/shm_setup.h"
#include "common/half.h"
#include "tests/mpi/transport_test_values.h"

namespace braid {
namespace {

using test::AnyRankFailed;
using test::Contribution;
using test::Expected;
using test::GetValue;
using test::SetValue;
using test::WorldRank;
using test::WorldSize;

constexpr int64_t kSlotBytes = 256;  // 64 float32: a 1 KiB buffer is 4 chunks

// All tests run on one host (mpiexec -n k on this machine).
WorldInfo OneHostWorld() {
  WorldInfo world;
  world.rank = WorldRank();
  world.size = WorldSize();
  world.local_rank = world.rank;
  world.local_size = world.size;
  return world;
}

class ShmBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    control_.reset(new mpi::MpiControlChannel(comm_));
    ASSERT_TRUE(mpi::MpiBackend::Create(comm_, mpi::MpiBackendOptions(), &mpi_).ok());
  }
  void TearDown() override {
    shm_.reset();
    mpi_.reset();
    control_.reset();
    MPI_Comm_free(&comm_);
  }
  Status SetUpWith(HostBackend kind, int64_t slot_bytes, const WorldInfo& world = OneHostWorld()) {
    TransportOptions options;
    options.host_backend = kind;
    options.shm_slot_bytes = slot_bytes;
    return shm::SetUpHostBackend(options, world, control_.get(), mpi_.get(), &shm_);
  }
  Backend* Make(int64_t slot_bytes = kSlotBytes) {
    const Status st = SetUpWith(HostBackend::kShm, slot_bytes);
    EXPECT_TRUE(st.ok()) << st.ToString();
    EXPECT_NE(shm_, nullptr);
    return shm_.get();
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  std::unique_ptr<ControlChannel> control_;
  std::unique_ptr<mpi::MpiBackend> mpi_;
  std::unique_ptr<Backend> shm_;
};

// One in-place allreduce against the reference; true when this rank saw a wrong
// element (the first is reported).
bool AllreduceFails(Backend* backend, DataType dtype, ReduceOp op, int64_t count) {
  const int rank = WorldRank(), n = WorldSize();
  std::vector<char> storage(count * DataTypeSize(dtype) + 1);
  for (int64_t i = 0; i < count; ++i)
    SetValue(storage.data(), dtype, i, Contribution(op, dtype, rank, i));
  const Status st = backend->Allreduce(BufferView{storage.data(), count, dtype}, op);
  if (!st.ok()) {
    ADD_FAILURE() << st.ToString();
    return true;
  }
  for (int64_t i = 0; i < count; ++i) {
    if (GetValue(storage.data(), dtype, i) == Expected(op, dtype, n, i)) continue;
    ADD_FAILURE() << DataTypeName(dtype) << " " << ReduceOpName(op) << " count " << count << " @"
                  << i << ": got " << GetValue(storage.data(), dtype, i) << " want "
                  << Expected(op, dtype, n, i);
    return true;
  }
  return false;
}

TEST_F(ShmBackendTest, ChosenAndUnlinked) {
  Backend* backend = Make();
  ASSERT_NE(backend, nullptr);
  EXPECT_STREQ(backend->name(), "shm");
  EXPECT_TRUE(backend->CanHandle(kCpuDevice));
  EXPECT_FALSE(backend->CanHandle(0));
  // Rank 0 created "/braid-<its pid>-..."; once set up, the name is gone.
  int pid = static_cast<int>(getpid());
  MPI_Bcast(&pid, 1, MPI_INT, 0, comm_);
  const std::string prefix = "braid-" + std::to_string(pid) + "-";
  DIR* dir = opendir("/dev/shm");
  ASSERT_NE(dir, nullptr);
  while (dirent* entry = readdir(dir)) {
    EXPECT_NE(std::strncmp(entry->d_name, prefix.c_str(), prefix.size()), 0) << entry->d_name;
  }
  closedir(dir);
}

// Chunk boundaries (a slot holds kSlotBytes / size elements), a buffer past the
// whole segment (2 halves of one slot per rank), primes; every dtype and op.
TEST_F(ShmBackendTest, AllreduceEveryDtypeOpAndChunking) {
  Backend* backend = Make();
  const int64_t segment = 2 * WorldSize() * kSlotBytes;
  for (DataType dtype : test::kDtypes) {
    const int64_t per_slot = kSlotBytes / static_cast<int64_t>(DataTypeSize(dtype));
    const int64_t past_segment = segment / static_cast<int64_t>(DataTypeSize(dtype)) * 3 + 13;
    for (ReduceOp op : test::kOps) {
      for (int64_t count : {int64_t{0}, int64_t{1}, int64_t{17}, per_slot - 1, per_slot,
                            per_slot + 1, 3 * per_slot, past_segment}) {
        ASSERT_FALSE(AnyRankFailed(AllreduceFails(backend, dtype, op, count)))
            << DataTypeName(dtype) << " " << ReduceOpName(op) << " count " << count;
      }
    }
  }
}

TEST_F(ShmBackendTest, AllreduceBoolIsLogical) {
  Backend* backend = Make();
  const int rank = WorldRank(), n = WorldSize();
  const int64_t count = 1000;
  for (ReduceOp op : test::kOps) {
    std::vector<uint8_t> data(count);
    for (int64_t i = 0; i < count; ++i) data[i] = (i % (n + 1)) == rank;
    ASSERT_TRUE(backend->Allreduce(BufferView{data.data(), count, DataType::kBool}, op).ok());
    const bool any = op == ReduceOp::kSum || op == ReduceOp::kMax;
    bool wrong = false;
    for (int64_t i = 0; i < count && !wrong; ++i) {
      // Rank r holds 1 at i = r mod (n + 1): one rank has it unless i = n mod (n + 1).
      const bool one = i % (n + 1) != n;
      const bool want = any ? one : (one && n == 1);
      wrong = data[i] != want;
      EXPECT_FALSE(wrong) << ReduceOpName(op) << " @" << i;
    }
    ASSERT_FALSE(AnyRankFailed(wrong));
  }
}

// The sum of float16 / bfloat16 is the float32 sum rounded once: 1 plus n - 1
// addends of 3/8 ulp each reaches the next value at three ranks, where rounding
// at every step would stay at 1. The average is float32(1/n) times it, rounded once.
TEST_F(ShmBackendTest, SixteenBitSumsRoundOnce) {
  Backend* backend = Make();
  const int rank = WorldRank(), n = WorldSize();
  struct Format {
    DataType dtype;
    float ulp_at_one;
    uint16_t (*narrow)(float);
    float (*widen)(uint16_t);
  };
  const Format formats[] = {{DataType::kFloat16, 1.0f / 1024, &FloatToHalf, &HalfToFloat},
                            {DataType::kBFloat16, 1.0f / 128, &FloatToBFloat16, &BFloat16ToFloat}};
  const int64_t count = 3 * kSlotBytes / 2 + 5;  // several chunks
  for (const Format& f : formats) {
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAverage}) {
      const float addend = 0.375f * f.ulp_at_one;
      std::vector<uint16_t> data(count, f.narrow(rank == 0 ? 1.0f : addend));
      ASSERT_TRUE(backend->Allreduce(BufferView{data.data(), count, f.dtype}, op).ok());
      float sum = 1.0f;
      for (int r = 1; r < n; ++r) sum += f.widen(f.narrow(addend));
      if (op == ReduceOp::kAverage) sum *= static_cast<float>(1.0 / n);
      const uint16_t want = f.narrow(sum);
      bool wrong = false;
      for (int64_t i = 0; i < count && !wrong; ++i) {
        wrong = data[i] != want;
        EXPECT_FALSE(wrong) << DataTypeName(f.dtype) << " " << ReduceOpName(op) << " @" << i
                            << ": bits " << data[i] << " want " << want;
      }
      if (n == 3 && op == ReduceOp::kSum) EXPECT_NE(want, f.narrow(1.0f));  // the point of it
      ASSERT_FALSE(AnyRankFailed(wrong));
    }
  }
}

// A fused group is reduced as its concatenation: empty tensors, tensors smaller
// than a chunk and tensors spanning several.
TEST_F(ShmBackendTest, AllreduceManyOverUnevenPieces) {
  Backend* backend = Make();
  const int rank = WorldRank(), n = WorldSize();
  const std::vector<int64_t> counts = {0, 1, 17, 5, 0, 300, 2, 64, 65, 1000};
  std::vector<std::vector<int32_t>> pieces;
  std::vector<BufferView> views;
  for (size_t p = 0; p < counts.size(); ++p) {
    pieces.emplace_back(counts[p]);
    for (int64_t i = 0; i < counts[p]; ++i)
      pieces[p][i] = (rank + 1) * static_cast<int>(p + 1) + static_cast<int>(i % 5);
  }
  for (auto& piece : pieces)
    views.push_back(BufferView{piece.data(), static_cast<int64_t>(piece.size()), DataType::kInt32});
  ASSERT_TRUE(backend->AllreduceMany(views, ReduceOp::kSum, BufferView()).ok());
  bool wrong = false;
  for (size_t p = 0; p < counts.size() && !wrong; ++p) {
    for (int64_t i = 0; i < counts[p] && !wrong; ++i) {
      const int want = static_cast<int>(p + 1) * n * (n + 1) / 2 + n * static_cast<int>(i % 5);
      wrong = pieces[p][i] != want;
      EXPECT_FALSE(wrong) << "piece " << p << " @" << i << ": " << pieces[p][i] << " want " << want;
    }
  }
  ASSERT_FALSE(AnyRankFailed(wrong));
}

bool AllgathervFails(Backend* backend, const std::vector<int64_t>& counts, bool in_place) {
  const int rank = WorldRank();
  int64_t total = 0, mine = 0;
  for (int r = 0; r < static_cast<int>(counts.size()); ++r) {
    if (r == rank) mine = total;
    total += counts[r];
  }
  std::vector<int16_t> recv(total + 1, -1), send(counts[rank] + 1);
  int16_t* own = in_place ? recv.data() + mine : send.data();
  for (int64_t i = 0; i < counts[rank]; ++i) own[i] = static_cast<int16_t>(rank * 1000 + i % 997);
  const Status st = backend->Allgatherv(BufferView{own, counts[rank], DataType::kInt16},
                                        BufferView{recv.data(), total, DataType::kInt16}, counts);
  if (!st.ok()) {
    ADD_FAILURE() << st.ToString();
    return true;
  }
  int64_t offset = 0;
  for (int r = 0; r < static_cast<int>(counts.size()); ++r) {
    for (int64_t i = 0; i < counts[r]; ++i) {
      if (recv[offset + i] == static_cast<int16_t>(r * 1000 + i % 997)) continue;
      ADD_FAILURE() << "block " << r << " @" << i << (in_place ? " in place" : "");
      return true;
    }
    offset += counts[r];
  }
  return recv[total] != -1;  // nothing written past the end
}

TEST_F(ShmBackendTest, AllgathervWithEmptyAndLargeBlocks) {
  Backend* backend = Make();
  const int n = WorldSize();
  std::vector<std::vector<int64_t>> cases = {std::vector<int64_t>(n, 0),
                                             std::vector<int64_t>(n, 1)};
  std::vector<int64_t> uneven(n), one_large(n, 0);
  for (int r = 0; r < n; ++r) uneven[r] = r == 1 ? 0 : 3 + 2 * r + r * kSlotBytes;
  one_large[n - 1] = 5 * kSlotBytes + 3;  // only the last rank sends, over many slots
  cases.push_back(uneven);
  cases.push_back(one_large);
  for (const auto& counts : cases) {
    for (bool in_place : {false, true}) {
      ASSERT_FALSE(AnyRankFailed(AllgathervFails(backend, counts, in_place)));
    }
  }
}

TEST_F(ShmBackendTest, BroadcastFromEveryRoot) {
  Backend* backend = Make();
  const int n = WorldSize(), rank = WorldRank();
  for (int64_t count : {int64_t{0}, int64_t{1}, int64_t{1009}, int64_t{5 * kSlotBytes * 4 + 3}}) {
    for (int root = 0; root < n; ++root) {
      std::vector<double> data(count, -1.0);
      if (rank == root)
        for (int64_t i = 0; i < count; ++i) data[i] = root * 7 + i;
      ASSERT_TRUE(
          backend->Broadcast(BufferView{data.data(), count, DataType::kFloat64}, root).ok());
      bool wrong = false;
      for (int64_t i = 0; i < count && !wrong; ++i) {
        wrong = data[i] != root * 7 + i;
        EXPECT_FALSE(wrong) << "root " << root << " count " << count << " @" << i;
      }
      ASSERT_FALSE(AnyRankFailed(wrong));
    }
  }
}

TEST_F(ShmBackendTest, NeighborExchangeOnARing) {
  Backend* backend = Make();
  const int rank = WorldRank(), n = WorldSize();
  const int right = (rank + 1) % n, left = (rank + n - 1) % n;
  for (int64_t count : {int64_t{0}, int64_t{1}, int64_t{1009}}) {
    std::vector<float> mine(count), from_left(count, -1.0f);
    for (int64_t i = 0; i < count; ++i) mine[i] = static_cast<float>(rank * 100 + i % 50);
    const Status st = backend->NeighborExchange(
        {{right, BufferView{mine.data(), count, DataType::kFloat32}}},
        {{left, BufferView{from_left.data(), count, DataType::kFloat32}}});
    ASSERT_TRUE(st.ok()) << st.ToString();
    bool wrong = false;
    for (int64_t i = 0; i < count && !wrong; ++i) {
      wrong = from_left[i] != static_cast<float>(left * 100 + i % 50);
      EXPECT_FALSE(wrong) << "count " << count << " @" << i;
    }
    ASSERT_FALSE(AnyRankFailed(wrong));
  }
}

// Steps of different collectives interleave on the segment's halves: a barrier
// between them, then another allreduce, all still right.
TEST_F(ShmBackendTest, CollectivesInterleave) {
  Backend* backend = Make();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(backend->Barrier().ok());
    ASSERT_FALSE(
        AnyRankFailed(AllreduceFails(backend, DataType::kFloat32, ReduceOp::kSum, 77 + i)));
    ASSERT_FALSE(
        AnyRankFailed(AllgathervFails(backend, std::vector<int64_t>(WorldSize(), 3 + i), i % 2)));
  }
}

TEST_F(ShmBackendTest, RejectsWhatTheMpiBackendRejects) {
  Backend* backend = Make();
  std::vector<float> data(4, 1.0f);
  BufferView buf{data.data(), 4, DataType::kFloat32};
  EXPECT_EQ(backend->Allreduce(buf, ReduceOp::kAverage).code(), StatusCode::kInvalidArgument);
  BufferView on_gpu = buf;
  on_gpu.device = 0;
  EXPECT_EQ(backend->Allreduce(on_gpu, ReduceOp::kSum).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(backend->Broadcast(buf, WorldSize()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(backend->Allgatherv(buf, buf, {}).code(), StatusCode::kInvalidArgument);
  // Still in step after the refusals (nothing was waited on).
  ASSERT_FALSE(AnyRankFailed(AllreduceFails(backend, DataType::kInt32, ReduceOp::kMax, 100)));
}

TEST_F(ShmBackendTest, AutoChoosesSharedMemoryForSeveralRanksOnOneHost) {
  ASSERT_TRUE(SetUpWith(HostBackend::kAuto, 0).ok());
  EXPECT_EQ(shm_ != nullptr, WorldSize() > 1);
  ASSERT_TRUE(SetUpWith(HostBackend::kMpi, 0).ok());
  EXPECT_EQ(shm_, nullptr);
}

// Ranks said to span hosts: shm is refused on every rank alike, auto takes MPI.
TEST_F(ShmBackendTest, ForcedAcrossHostsIsAnError) {
  if (WorldSize() < 2) GTEST_SKIP() << "needs two ranks";
  WorldInfo two_hosts = OneHostWorld();
  two_hosts.local_size = 1;
  two_hosts.cross_size = two_hosts.size;
  const Status st = SetUpWith(HostBackend::kShm, 0, two_hosts);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("every rank on one host"), std::string::npos) << st.message();
  ASSERT_TRUE(SetUpWith(HostBackend::kAuto, 0, two_hosts).ok());
  EXPECT_EQ(shm_, nullptr);
}

// A segment /dev/shm cannot hold (slots of 1 TiB): auto falls back to MPI on every
// rank, forced shm fails on every rank; no name is left behind either way.
TEST_F(ShmBackendTest, SegmentThatCannotBeMadeFallsBackOrFails) {
  const int64_t huge = int64_t{1} << 40;
  ASSERT_TRUE(SetUpWith(HostBackend::kAuto, huge).ok());
  EXPECT_EQ(shm_, nullptr);
  const Status st = SetUpWith(HostBackend::kShm, huge);
  EXPECT_EQ(st.code(), StatusCode::kBackendError) << st.ToString();
  EXPECT_NE(st.message().find("BRAID_HOST_BACKEND=shm"), std::string::npos) << st.message();
  EXPECT_EQ(shm_, nullptr);
}

}  // namespace
}  // namespace braid
