// The engine's device path on a fake device (tests/mpi/fake_device_plane.h), so
// that it runs on every machine: tensors on device 0 produced on streams.
//
// The ordering contract: the engine's work waits for what a tensor's stream had
// queued when the tensor was enqueued (its ready event), not for work queued there
// afterwards, and a finished handle means a finished output, post-processing
// included. Each test holds the producer stream on a gate until after the call,
// and queues on it, after the call, work that stays blocked until the handle has
// finished and would then overwrite the tensor. Waiting for that work, or leaving
// the average's division queued behind it, fails the test.
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/mpi/c_api_test_util.h"
#include "tests/mpi/fake_device_plane.h"

namespace {

using ctu::Handle;
using ctu::Tensor;

constexpr int kDevice = 0;

// Registered before main() runs the tests, so no engine ever loads the CUDA plugin.
const bool kRegistered = [] {
  fake::RegisterFakeDevicePlugin();
  return true;
}();

// A tensor on the fake device, described with the stream it is produced on.
struct DeviceTensor {
  DeviceTensor(int dtype, std::vector<int64_t> shape, void* stream)
      : host(dtype, std::move(shape), kDevice), stream(stream) {}
  braid_tensor_t* desc() {
    desc_ = *host.desc();
    desc_.stream = stream;
    return &desc_;
  }
  Tensor host;
  void* stream;

 private:
  braid_tensor_t desc_{};
};

// A producer stream held shut until Open(), and work queued on it after the
// call that stays blocked until Release(). Tensors its tasks write must outlive it:
// the tests declare them first (a unique_ptr, set once the producer's stream exists).
class Producer {
 public:
  Producer() { stream.WaitFor(gate_); }
  ~Producer() {
    Open();
    Release();
    stream.Drain();
  }
  // Queued behind the gate: what the framework computes before the call.
  void Produce(std::function<void()> work) { stream.Queue(std::move(work)); }
  // Queued after the call: blocked until Release(), then `work`.
  void Later(std::function<void()> work) {
    stream.WaitFor(later_);
    stream.Queue(std::move(work));
  }
  void Open() { gate_->Reach(); }
  void Release() { later_->Reach(); }

  fake::Stream stream;

 private:
  std::shared_ptr<fake::Mark> gate_ = std::make_shared<fake::Mark>();
  std::shared_ptr<fake::Mark> later_ = std::make_shared<fake::Mark>();
};

// Waits for `h` for at most 20 s (well inside the stall timeout).
::testing::AssertionResult FinishesInTime(Handle& h) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!braid_poll(h.get())) {
    if (std::chrono::steady_clock::now() > deadline)
      return ::testing::AssertionFailure() << "the handle did not finish in 20 s";
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const int rc = h.Wait();
  if (rc != BRAID_OK) return ::testing::AssertionFailure() << "rc " << rc << ": " << h.Error();
  return ::testing::AssertionSuccess();
}

class DevicePath : public ctu::BraidTest {};

struct GroupCase {
  int dtype;
  int op;
  double prescale;
  double postscale;
  bool out_of_place;
};

// A fused group of tensors produced on two streams, reduced with every scaling
// step, while both streams have later work blocked behind the call.
void CheckGroup(const GroupCase& c, int rank, int size) {
  constexpr int kTensors = 6;
  // Declared in this order so that the handles finish first and the streams have
  // drained before the tensors go.
  std::vector<std::unique_ptr<DeviceTensor>> inputs, outputs;
  Producer producers[2];
  std::vector<Handle> handles(kTensors);
  const int recorded_before = fake::ReadyEventsRecorded();
  for (int t = 0; t < kTensors; ++t) {
    Producer& p = producers[t % 2];
    const int64_t count = 1 + 37 * t;
    inputs.push_back(
        std::make_unique<DeviceTensor>(c.dtype, std::vector<int64_t>{count}, &p.stream));
    outputs.push_back(c.out_of_place ? std::make_unique<DeviceTensor>(
                                           c.dtype, std::vector<int64_t>{count}, &p.stream)
                                     : nullptr);
    Tensor* in = &inputs.back()->host;
    p.Produce([in, &c, rank, t] {
      in->Fill([&](int64_t i) { return ctu::InputValue(c.dtype, c.op, rank, i, t); });
    });
    Tensor* out = c.out_of_place ? &outputs.back()->host : in;
    const std::string name = ctu::UniqueName("group." + std::to_string(t));
    ASSERT_EQ(braid_allreduce_async(name.c_str(), inputs.back()->desc(), out->data(), c.op,
                                    c.prescale, c.postscale, handles[t].out()),
              BRAID_OK)
        << braid_last_error();
  }
  for (int t = 0; t < kTensors; ++t) {
    Tensor* out = c.out_of_place ? &outputs[t]->host : &inputs[t]->host;
    producers[t % 2].Later([out] { out->Fill([](int64_t) { return 99; }); });
  }
  EXPECT_EQ(fake::ReadyEventsRecorded() - recorded_before, kTensors);
  for (Producer& p : producers) p.Open();
  for (int t = 0; t < kTensors; ++t) {
    ASSERT_TRUE(FinishesInTime(handles[t])) << "tensor " << t;
    const Tensor& out = c.out_of_place ? outputs[t]->host : inputs[t]->host;
    EXPECT_TRUE(ctu::MatchesValues(
        out,
        [&](int64_t i) {
          return ctu::ExpectedAllreduce(c.dtype, c.op, size, i, c.prescale, c.postscale, t);
        },
        ctu::RoundingTolerance(c.dtype)))
        << ctu::DtypeName(c.dtype) << " " << ctu::OpName(c.op) << " tensor " << t;
  }
}

TEST_F(DevicePath, FusedGroupWaitsOnlyForWorkQueuedBeforeTheCall) {
  for (int dtype : ctu::AllDtypes()) {
    for (int op : {BRAID_SUM, BRAID_AVERAGE}) {
      const bool scaled = ctu::IsFloat(dtype) && op == BRAID_SUM;
      CheckGroup({dtype, op, scaled ? 0.5 : 1.0, scaled ? 4.0 : 1.0, false}, rank_, size_);
      CheckGroup({dtype, op, 1.0, 1.0, true}, rank_, size_);
    }
  }
}

TEST_F(DevicePath, AllgatherOutputIsCompleteWhenTheHandleIs) {
  const int64_t rows = rank_ + 1, cols = 3;
  std::unique_ptr<DeviceTensor> owned;
  Producer p;
  owned =
      std::make_unique<DeviceTensor>(BRAID_FLOAT64, std::vector<int64_t>{rows, cols}, &p.stream);
  DeviceTensor* in = owned.get();
  p.Produce([in, this] { in->host.Fill([&](int64_t i) { return 1000.0 * rank_ + i; }); });
  Handle h;
  const std::string name = ctu::UniqueName("allgather");
  ASSERT_EQ(braid_allgather_async(name.c_str(), in->desc(), h.out()), BRAID_OK)
      << braid_last_error();
  p.Later([in] { in->host.Fill([](int64_t) { return -1; }); });
  p.Open();
  ASSERT_TRUE(FinishesInTime(h));
  const void* data = nullptr;
  int ndim = 0;
  const int64_t* shape = nullptr;
  ASSERT_EQ(braid_handle_output(h.get(), &data, &ndim, &shape), BRAID_OK);
  ASSERT_EQ(ndim, 2);
  EXPECT_EQ(shape[0], static_cast<int64_t>(size_) * (size_ + 1) / 2);
  EXPECT_EQ(shape[1], cols);
  const double* out = static_cast<const double*>(data);
  int64_t at = 0;
  for (int r = 0; r < size_; ++r)
    for (int64_t i = 0; i < (r + 1) * cols; ++i, ++at)
      ASSERT_EQ(out[at], 1000.0 * r + i) << "rank " << r << " element " << i;
  p.Release();
}

TEST_F(DevicePath, BroadcastFromEveryRoot) {
  for (int root = 0; root < size_; ++root) {
    std::unique_ptr<DeviceTensor> buf;
    Producer p;
    buf = std::make_unique<DeviceTensor>(BRAID_INT32, std::vector<int64_t>{1000}, &p.stream);
    DeviceTensor* b = buf.get();
    const int rank = rank_;
    p.Produce([b, rank] { b->host.Fill([&](int64_t i) { return 10 * rank + i % 7; }); });
    Handle h;
    const std::string name = ctu::UniqueName("broadcast");
    ASSERT_EQ(braid_broadcast_async(name.c_str(), b->desc(), root, h.out()), BRAID_OK)
        << braid_last_error();
    p.Later([b] { b->host.Fill([](int64_t) { return -5; }); });
    p.Open();
    ASSERT_TRUE(FinishesInTime(h)) << "root " << root;
    EXPECT_TRUE(ctu::MatchesValues(b->host, [&](int64_t i) { return 10 * root + i % 7; }))
        << "root " << root;
  }
}

// A stream that cannot be recorded on (as a CUDA stream of another device): the
// call is taken, and the handle fails on every rank with the device's error
// instead of leaving any rank waiting.
TEST_F(DevicePath, UnrecordableStreamFailsTheHandle) {
  DeviceTensor t(BRAID_FLOAT32, {4}, fake::UnrecordableStream());
  Handle h;
  const std::string name = ctu::UniqueName("bad-stream");
  ASSERT_EQ(
      braid_allreduce_async(name.c_str(), t.desc(), t.host.data(), BRAID_SUM, 1.0, 1.0, h.out()),
      BRAID_OK)
      << braid_last_error();
  EXPECT_NE(h.Wait(), BRAID_OK);
  EXPECT_NE(h.Error().find("cannot record"), std::string::npos) << h.Error();
  EXPECT_TRUE(ctu::EngineUsable());
}

// Host memory on the last rank, device memory on the others: every rank gets the
// same mismatch error.
TEST_F(DevicePath, HostAndDeviceTensorsOfOneNameAreAMismatch) {
  CTU_REQUIRE_RANKS(2);
  const bool host = rank_ == size_ - 1;
  Producer p;
  p.Open();
  Tensor on_host(BRAID_FLOAT32, {8});
  DeviceTensor on_device(BRAID_FLOAT32, {8}, &p.stream);
  braid_tensor_t* desc = host ? const_cast<braid_tensor_t*>(on_host.desc()) : on_device.desc();
  void* out = host ? on_host.data() : on_device.host.data();
  Handle h;
  const std::string name = ctu::UniqueName("mixed");
  ASSERT_EQ(braid_allreduce_async(name.c_str(), desc, out, BRAID_SUM, 1.0, 1.0, h.out()), BRAID_OK)
      << braid_last_error();
  EXPECT_NE(h.Wait(), BRAID_OK);
  const std::string error = h.Error();
  EXPECT_NE(error.find("Mismatched devices"), std::string::npos) << error;
  EXPECT_NE(error.find("rank " + std::to_string(size_ - 1) + " has cpu"), std::string::npos)
      << error;
  EXPECT_NE(error.find("rank 0 has cuda:0"), std::string::npos) << error;
  EXPECT_TRUE(ctu::EngineUsable());
}

// The last rank joins at once; the others' device allreduce counts it as zeros,
// which it writes on its own device plane's stream.
TEST_F(DevicePath, JoinedRankStandsInWithDeviceZeros) {
  CTU_REQUIRE_RANKS(2);
  int last = -1;
  if (rank_ == size_ - 1) {
    ASSERT_EQ(braid_join(&last), BRAID_OK) << braid_last_error();
    return;
  }
  std::unique_ptr<DeviceTensor> t;
  Producer p;
  t = std::make_unique<DeviceTensor>(BRAID_FLOAT32, std::vector<int64_t>{33}, &p.stream);
  DeviceTensor* d = t.get();
  const int rank = rank_;
  p.Produce([d, rank] { d->host.Fill([&](int64_t i) { return rank + 1.0 + i; }); });
  Handle h;
  const std::string name = ctu::UniqueName("joined");
  ASSERT_EQ(
      braid_allreduce_async(name.c_str(), d->desc(), d->host.data(), BRAID_SUM, 1.0, 1.0, h.out()),
      BRAID_OK)
      << braid_last_error();
  p.Open();
  ASSERT_TRUE(FinishesInTime(h));
  const int contributing = size_ - 1;
  EXPECT_TRUE(ctu::MatchesValues(d->host, [&](int64_t i) {
    return contributing * (contributing + 1) / 2.0 + contributing * static_cast<double>(i);
  }));
  ASSERT_EQ(braid_join(&last), BRAID_OK) << braid_last_error();
}

}  // namespace
