// The MPI transport: CreateTransport on MPI_COMM_WORLD, WorldInfo, the control
// channel, and the host backend's collectives (BRAID_HOST_BACKEND=auto: shared
// memory at np > 1 on this one host) for every dtype and op; the MPI backend on both
// allreduce paths (MPI_Allreduce and the ring), with MPI calls forced into tiny
// pieces to prove the > INT_MAX splitting on small buffers.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "collectives/mpi/mpi_backend.h"
#include "collectives/mpi/mpi_check.h"
#include "collectives/transport.h"
#include "tests/mpi/transport_test_values.h"

namespace braid {
namespace {

using test::AnyRankFailed;
using test::Contribution;
using test::Expected;
using test::GetValue;
using test::kDtypes;
using test::kOps;
using test::SetValue;
using test::WorldRank;
using test::WorldSize;

// Runs one allreduce and returns how many elements came out wrong (first one reported).
int64_t CheckAllreduce(Backend* backend, DataType dtype, ReduceOp op, int64_t count) {
  const int rank = WorldRank(), n = WorldSize();
  std::vector<char> storage(count * DataTypeSize(dtype) + 1);
  BufferView buf{storage.data(), count, dtype};
  for (int64_t i = 0; i < count; ++i)
    SetValue(buf.data, dtype, i, Contribution(op, dtype, rank, i));
  Status st = backend->Allreduce(buf, op);
  EXPECT_TRUE(st.ok()) << st.ToString();
  int64_t wrong = 0;
  for (int64_t i = 0; i < count; ++i) {
    if (GetValue(buf.data, dtype, i) == Expected(op, dtype, n, i)) continue;
    if (wrong++ == 0) {
      ADD_FAILURE() << DataTypeName(dtype) << " " << ReduceOpName(op) << " count " << count << " @"
                    << i << ": got " << GetValue(buf.data, dtype, i) << " want "
                    << Expected(op, dtype, n, i);
    }
  }
  return wrong;
}

void CheckAllreduceEverywhere(Backend* backend, const std::vector<int64_t>& bytes_or_counts,
                              bool are_bytes) {
  for (DataType dtype : kDtypes) {
    for (ReduceOp op : kOps) {
      for (int64_t c : bytes_or_counts) {
        const int64_t count = are_bytes ? c / static_cast<int64_t>(DataTypeSize(dtype)) : c;
        const bool failed = CheckAllreduce(backend, dtype, op, count) != 0;
        ASSERT_FALSE(AnyRankFailed(failed)) << DataTypeName(dtype) << " " << ReduceOpName(op);
      }
    }
  }
}

// Returns true when this rank saw a wrong result (the first one is reported).
bool AllgathervFails(Backend* backend, DataType dtype, const std::vector<int64_t>& counts,
                     bool in_place) {
  const int rank = WorldRank();
  int64_t total = 0, mine = 0;
  for (int r = 0; r < static_cast<int>(counts.size()); ++r) {
    if (r == rank) mine = total;
    total += counts[r];
  }
  const size_t elem = DataTypeSize(dtype);
  std::vector<char> recv_bytes(total * elem + 1, 0x5a), send_bytes(counts[rank] * elem + 1);
  BufferView recv{recv_bytes.data(), total, dtype};
  BufferView send = in_place ? recv.Slice(mine, counts[rank])
                             : BufferView{send_bytes.data(), counts[rank], dtype};
  for (int64_t i = 0; i < counts[rank]; ++i) SetValue(send.data, dtype, i, (rank * 13 + i) % 100);
  Status st = backend->Allgatherv(send, recv, counts);
  EXPECT_TRUE(st.ok()) << st.ToString();
  int64_t offset = 0;
  for (int r = 0; r < static_cast<int>(counts.size()); ++r) {
    for (int64_t i = 0; i < counts[r]; ++i) {
      if (GetValue(recv.data, dtype, offset + i) == (r * 13 + i) % 100) continue;
      ADD_FAILURE() << DataTypeName(dtype) << " block " << r << " @" << i
                    << (in_place ? " in place" : "");
      return true;
    }
    offset += counts[r];
  }
  return !st.ok();
}

void CheckAllgatherv(Backend* backend, DataType dtype, const std::vector<int64_t>& counts,
                     bool in_place) {
  ASSERT_FALSE(AnyRankFailed(AllgathervFails(backend, dtype, counts, in_place)));
}

// Unequal counts, with rank 1 (when there is one) contributing nothing.
std::vector<int64_t> UnequalCounts(int64_t scale) {
  std::vector<int64_t> counts(WorldSize());
  for (int r = 0; r < WorldSize(); ++r) counts[r] = r == 1 ? 0 : scale * (3 + 2 * r);
  return counts;
}

bool BroadcastFails(Backend* backend, DataType dtype, int root, int64_t count) {
  std::vector<char> bytes(count * DataTypeSize(dtype) + 1);
  BufferView buf{bytes.data(), count, dtype};
  for (int64_t i = 0; i < count; ++i) {
    SetValue(buf.data, dtype, i, WorldRank() == root ? (root * 7 + i) % 100 : 101);
  }
  Status st = backend->Broadcast(buf, root);
  EXPECT_TRUE(st.ok()) << st.ToString();
  for (int64_t i = 0; i < count; ++i) {
    if (GetValue(buf.data, dtype, i) == (root * 7 + i) % 100) continue;
    ADD_FAILURE() << DataTypeName(dtype) << " root " << root << " @" << i;
    return true;
  }
  return !st.ok();
}

void CheckBroadcastFromEveryRoot(Backend* backend, int64_t count) {
  for (DataType dtype : kDtypes) {
    for (int root = 0; root < WorldSize(); ++root) {
      ASSERT_FALSE(AnyRankFailed(BroadcastFails(backend, dtype, root, count)));
    }
  }
}

class TransportTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    MPI_Comm world = MPI_COMM_WORLD;
    TransportOptions options;
    options.mpi_comm = &world;
    Status st = CreateTransport(options, &transport_);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  static void TearDownTestSuite() { transport_.reset(); }
  Backend* host() { return transport_->BackendFor(kCpuDevice); }

  static std::unique_ptr<Transport> transport_;
};
std::unique_ptr<Transport> TransportTest::transport_;

TEST_F(TransportTest, WorldInfoIsSane) {
  const WorldInfo& info = transport_->info();
  EXPECT_EQ(info.rank, WorldRank());
  EXPECT_EQ(info.size, WorldSize());
  EXPECT_GE(info.local_rank, 0);
  EXPECT_LT(info.local_rank, info.local_size);
  EXPECT_GE(info.cross_rank, 0);
  EXPECT_LT(info.cross_rank, info.cross_size);
  EXPECT_EQ(info.local_size * info.cross_size, info.size);
  EXPECT_EQ(transport_->control()->rank(), info.rank);
  EXPECT_EQ(transport_->control()->size(), info.size);
}

TEST_F(TransportTest, BackendsByDevice) {
  ASSERT_NE(host(), nullptr);
  // BRAID_HOST_BACKEND=auto (the default): shared memory for several ranks on
  // this one host, MPI for one rank.
  EXPECT_STREQ(host()->name(), WorldSize() > 1 ? "shm" : "mpi");
  EXPECT_TRUE(host()->CanHandle(kCpuDevice));
  EXPECT_EQ(transport_->DeviceOpsFor(kCpuDevice), nullptr);  // host memory: the executor's own
  // No device plane before one is set up: nothing is created behind the ranks'
  // backs by asking.
  Status why;
  EXPECT_EQ(transport_->BackendFor(0, &why), nullptr);
  EXPECT_FALSE(why.ok());
  EXPECT_EQ(transport_->DeviceOpsFor(0), nullptr);
  // A device has a backend only where one can be set up (a GPU, a GPU build, one
  // rank per GPU); otherwise every rank gets the same reason. Collective.
  Status setup = transport_->SetUpDevicePlane(0);
  EXPECT_EQ(setup.code(), transport_->SetUpDevicePlane(0).code()) << "a second call differs";
  Backend* device = transport_->BackendFor(0, &why);
  EXPECT_EQ(why.code(), setup.code());
  if (device == nullptr) {
    EXPECT_FALSE(why.ok());
    EXPECT_FALSE(why.message().empty());
    EXPECT_EQ(transport_->DeviceOpsFor(0), nullptr);
  } else {
    EXPECT_TRUE(why.ok()) << why.message();
    EXPECT_TRUE(device->CanHandle(0));
    EXPECT_NE(transport_->DeviceOpsFor(0), nullptr);
  }
}

std::string GatherPayload(int rank) {
  std::string s(static_cast<size_t>(rank) * 5, static_cast<char>('a' + rank));
  if (rank % 2 == 1) s += std::string("\0x", 2);  // embedded NUL survives
  return s;
}

TEST_F(TransportTest, ControlGatherToRoot) {
  ControlChannel* control = transport_->control();
  for (int round = 0; round < 3; ++round) {
    std::vector<std::string> all = {"stale"};
    ASSERT_TRUE(control->GatherToRoot(GatherPayload(control->rank()), &all).ok());
    if (control->rank() != 0) {
      EXPECT_TRUE(all.empty());
      continue;
    }
    EXPECT_EQ(static_cast<int>(all.size()), control->size());
    for (int r = 0; r < control->size() && r < static_cast<int>(all.size()); ++r) {
      EXPECT_EQ(all[r], GatherPayload(r));
    }
  }
}

TEST_F(TransportTest, ControlBroadcastFromRoot) {
  ControlChannel* control = transport_->control();
  const std::string payload = std::string("hello\0world", 11) + std::string(100000, 'z');
  for (const std::string& sent : {payload, std::string()}) {
    std::string bytes = control->rank() == 0 ? sent : std::string("something else");
    ASSERT_TRUE(control->BroadcastFromRoot(&bytes).ok());
    EXPECT_EQ(bytes, sent);
  }
}

TEST_F(TransportTest, ControlAllreduceBitAnd) {
  ControlChannel* control = transport_->control();
  const int rank = control->rank();
  std::vector<uint64_t> words = {~0ull, (1ull << rank) | 1ull, ~(1ull << rank), 0ull};
  ASSERT_TRUE(control->AllreduceBitAnd(&words).ok());
  uint64_t expect_one = ~0ull, expect_two = ~0ull;
  for (int r = 0; r < control->size(); ++r) {
    expect_one &= (1ull << r) | 1ull;
    expect_two &= ~(1ull << r);
  }
  EXPECT_EQ(words, (std::vector<uint64_t>{~0ull, expect_one, expect_two, 0ull}));
  std::vector<uint64_t> none;
  EXPECT_TRUE(control->AllreduceBitAnd(&none).ok());
}

TEST_F(TransportTest, AllreduceEveryDtypeAndOp) {
  // 0, 1, a prime; then 1 MiB and just past the ring threshold (odd counts).
  CheckAllreduceEverywhere(host(), {0, 1, 17}, /*are_bytes=*/false);
  CheckAllreduceEverywhere(host(), {1 << 20, mpi::kDefaultRingThresholdBytes + 8 * 13}, true);
}

TEST_F(TransportTest, AllgathervUnequalCounts) {
  for (DataType dtype : kDtypes) {
    CheckAllgatherv(host(), dtype, UnequalCounts(1), /*in_place=*/false);
    CheckAllgatherv(host(), dtype, UnequalCounts(1), /*in_place=*/true);
    CheckAllgatherv(host(), dtype, UnequalCounts(1000), /*in_place=*/true);
  }
  CheckAllgatherv(host(), DataType::kFloat32, std::vector<int64_t>(WorldSize(), 0), false);
}

TEST_F(TransportTest, BroadcastFromEveryRoot) {
  CheckBroadcastFromEveryRoot(host(), 0);
  CheckBroadcastFromEveryRoot(host(), 1001);
}

TEST_F(TransportTest, Barrier) {
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(host()->Barrier().ok());
}

TEST_F(TransportTest, RejectsWhatItCannotDo) {
  std::vector<float> data(4, 1.0f);
  BufferView buf{data.data(), 4, DataType::kFloat32};
  EXPECT_EQ(host()->Allreduce(buf, ReduceOp::kAverage).code(), StatusCode::kInvalidArgument);
  BufferView on_gpu = buf;
  on_gpu.device = 0;
  EXPECT_EQ(host()->Allreduce(on_gpu, ReduceOp::kSum).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(host()->Broadcast(buf, WorldSize()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(host()->Allgatherv(buf, buf, {}).code(), StatusCode::kInvalidArgument);
  std::vector<float> big(1 << 21, 1.0f);  // large enough for the ring path
  BufferView group{big.data(), static_cast<int64_t>(big.size()), DataType::kFloat32};
  EXPECT_EQ(host()->AllreduceMany({group, group}, ReduceOp::kAverage, group).code(),
            StatusCode::kInvalidArgument);
}

// A backend on its own duplicate of MPI_COMM_WORLD with chosen options.
class BackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  }
  void TearDown() override {
    backend_.reset();
    MPI_Comm_free(&comm_);
  }
  Backend* Make(const mpi::MpiBackendOptions& options) {
    Status st = mpi::MpiBackend::Create(comm_, options, &backend_);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return backend_.get();
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  std::unique_ptr<mpi::MpiBackend> backend_;
};

TEST_F(BackendTest, RingHandlesEveryShape) {
  mpi::MpiBackendOptions options;
  options.ring_threshold_bytes = 0;  // every allreduce takes the ring
  options.scratch_bytes = 4096;
  options.ring_segment_bytes = 1024;
  Backend* backend = Make(options);
  // count < ranks (empty chunks), not divisible by the ranks, many segments.
  CheckAllreduceEverywhere(backend, {1, 2, 3, 5, 17, 1000, 4099, 65537}, /*are_bytes=*/false);
}

TEST_F(BackendTest, TinyPiecesSplitEveryCall) {
  mpi::MpiBackendOptions options;
  options.max_piece_elements = 7;
  Backend* backend = Make(options);
  CheckAllreduceEverywhere(backend, {17, 100}, /*are_bytes=*/false);
  // Counts and displacements beyond the piece size: the broadcast fallback.
  for (DataType dtype : {DataType::kFloat16, DataType::kInt64, DataType::kUInt8}) {
    CheckAllgatherv(backend, dtype, UnequalCounts(3), /*in_place=*/false);
    CheckAllgatherv(backend, dtype, UnequalCounts(3), /*in_place=*/true);
  }
  CheckBroadcastFromEveryRoot(backend, 100);
}

TEST_F(BackendTest, TinyPiecesOnTheRing) {
  mpi::MpiBackendOptions options;
  options.max_piece_elements = 7;
  options.ring_threshold_bytes = 0;
  Backend* backend = Make(options);
  CheckAllreduceEverywhere(backend, {3, 100, 1001}, /*are_bytes=*/false);
}

TEST_F(BackendTest, CheckMpiReportsTheFailingCall) {
  auto bad_root = [this]() -> Status {
    int value = 0;
    BRAID_CHECK_MPI(MPI_Bcast(&value, 1, MPI_INT, WorldSize() + 5, comm_));
    return Status::OK();
  };
  Status st = bad_root();
  EXPECT_EQ(st.code(), StatusCode::kBackendError);
  EXPECT_NE(st.message().find("MPI_Bcast"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("test_transport.cc"), std::string::npos) << st.message();
}

// Needs about 2 GiB per rank (4 with MPI's own temporaries): opt in.
TEST_F(BackendTest, MoreThanIntMaxElements) {
  const char* env = std::getenv("BRAID_TEST_HUGE");
  if (env == nullptr || std::string(env) != "1") {
    GTEST_SKIP() << "set BRAID_TEST_HUGE=1 to run collectives on 2^31+17 uint8 elements";
  }
  const int64_t count = (int64_t{1} << 31) + 17;
  std::vector<uint8_t> data(count);
  BufferView buf{data.data(), count, DataType::kUInt8};
  for (int64_t threshold : {int64_t{0}, int64_t{1} << 40}) {  // ring, then MPI_Allreduce
    mpi::MpiBackendOptions options;
    options.ring_threshold_bytes = threshold;
    Backend* backend = Make(options);
    std::fill(data.begin(), data.end(), uint8_t{1});
    data[count - 1] = 2;
    ASSERT_TRUE(backend->Allreduce(buf, ReduceOp::kSum).ok());
    EXPECT_EQ(data[0], WorldSize());
    EXPECT_EQ(data[count - 1], 2 * WorldSize());
    EXPECT_EQ(std::count(data.begin(), data.end(), uint8_t(WorldSize())), count - 1);
  }
  std::fill(data.begin(), data.end(), uint8_t(WorldRank() == 0 ? 7 : 0));
  ASSERT_TRUE(backend_->Broadcast(buf, 0).ok());
  EXPECT_EQ(std::count(data.begin(), data.end(), uint8_t{7}), count);
  std::vector<int64_t> counts(WorldSize(), count / WorldSize());
  counts.back() += count % WorldSize();
  const int64_t mine = WorldRank() * (count / WorldSize());
  std::fill(data.begin(), data.end(), uint8_t{0});
  std::fill(data.begin() + mine, data.begin() + mine + counts[WorldRank()],
            uint8_t(WorldRank() + 1));
  ASSERT_TRUE(backend_->Allgatherv(buf.Slice(mine, counts[WorldRank()]), buf, counts).ok());
  for (int r = 0; r < WorldSize(); ++r) {
    const int64_t at = r * (count / WorldSize());
    EXPECT_EQ(std::count(data.begin() + at, data.begin() + at + counts[r], uint8_t(r + 1)),
              counts[r]);
  }
}

}  // namespace
}  // namespace braid
