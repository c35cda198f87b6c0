// A device plugin without a GPU, for testing the engine's device path (ready
// events, the device plane's stream, post-processing, stand-ins) on any machine.
// "Device memory" is host memory on a device ordinal; a stream is a worker thread
// that runs queued tasks in order; an event is a one-shot mark queued on a stream.
// The backend runs the MPI host backend once the streams its buffers name have
// drained, as a device backend orders its collective after them; DeviceOps queues
// its copies on its own stream, like CudaDeviceOps.
//
// A test registers it with RegisterFakeDevicePlugin() before the engine sees a
// device tensor; the real plugin is then never loaded.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "collectives/cpu/mix.h"
#include "collectives/cpu/reduce.h"
#include "collectives/cpu/scatter_add.h"
#include "collectives/device_plane.h"

namespace fake {

// A point on a stream: reached once the stream has run everything queued before it.
// Shared: a stream told to wait for it keeps it alive (a CUDA event may likewise be
// destroyed once a stream has been told to wait on it).
class Mark : public std::enable_shared_from_this<Mark> {
 public:
  void Reach() {
    std::lock_guard<std::mutex> lock(mu_);
    reached_ = true;
    cv_.notify_all();
  }
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return reached_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool reached_ = false;
};

class Stream {
 public:
  Stream() : worker_([this] { Run(); }) {}
  ~Stream() {
    Queue(nullptr);
    worker_.join();
  }
  // Runs `task` after everything queued before it; null stops the worker.
  void Queue(std::function<void()> task) {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(task));
    cv_.notify_all();
  }
  std::shared_ptr<Mark> Record() {
    auto mark = std::make_shared<Mark>();
    Queue([mark] { mark->Reach(); });
    return mark;
  }
  void WaitFor(std::shared_ptr<Mark> mark) {
    Queue([mark] { mark->Wait(); });
  }
  // Blocks until everything queued so far has run.
  void Drain() { Record()->Wait(); }

 private:
  void Run() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return !tasks_.empty(); });
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      if (!task) return;
      task();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  std::thread worker_;
};

// Failures a test injects into this process's fake device, so on one rank only:
// each counter fails that many of the next calls of its kind.
struct Faults {
  std::atomic<int> create_plane{0};   // the plane's set-up
  std::atomic<int> allocate{0};       // Ops::Allocate: out of device memory
  std::atomic<int> fusion_buffer{0};  // Ops::FusionBuffer
  std::atomic<int> copies{0};         // Ops::ScaledCopies: a copy that cannot be queued
  std::atomic<int> prepare{0};        // Backend::Prepare: staging memory
};
inline Faults& InjectedFaults() {
  static Faults faults;
  return faults;
}
// How many collectives the fake backend has entered in this process: a test can
// wait until the coordinator is inside one (held there by a gated stream).
inline std::atomic<int>& CollectivesEntered() {
  static std::atomic<int> n{0};
  return n;
}
// Whether the next call of a kind fails (and counts it).
inline bool Fails(std::atomic<int>& counter) {
  int left = counter.load();
  while (left > 0 && !counter.compare_exchange_weak(left, left - 1)) {
  }
  return left > 0;
}
inline braid::Status Injected(const char* what) {
  return braid::BackendError(std::string("injected failure: ") + what);
}

// The stream a null handle names (CUDA's legacy default stream).
inline Stream& DefaultStream() {
  static Stream* stream = new Stream;  // outlives every engine
  return *stream;
}
inline Stream& StreamOf(void* handle) {
  return handle == nullptr ? DefaultStream() : *static_cast<Stream*>(handle);
}

// How many ready events have been recorded (each at an enqueue).
inline int& ReadyEventsRecorded() {
  static int n = 0;
  return n;
}

// A stream handle the recorder refuses, as CUDA refuses a stream of another device.
inline void* UnrecordableStream() {
  static char token;
  return &token;
}

inline braid::Status CannotRecord() {
  return braid::BackendError("the fake device cannot record on this stream");
}

inline braid::Status RecordReady(int, void* stream, std::shared_ptr<void>* event) {
  if (stream == UnrecordableStream()) return CannotRecord();
  ++ReadyEventsRecorded();
  *event = StreamOf(stream).Record();
  return braid::Status::OK();
}

class Ops : public braid::DeviceOps {
 public:
  explicit Ops(int device) : device_(device) {}
  int device() const override { return device_; }
  void* stream() const override { return const_cast<Stream*>(&stream_); }
  braid::Status WaitFor(const void* ready, void* producer) override {
    if (ready == nullptr && producer == stream()) return braid::Status::OK();
    if (producer == UnrecordableStream()) return CannotRecord();
    // A ready event is the Mark the request carries; the wait holds it, since the
    // request may go (a collective that fails before it starts) before the wait runs.
    std::shared_ptr<Mark> mark =
        ready != nullptr ? static_cast<Mark*>(const_cast<void*>(ready))->shared_from_this()
                         : StreamOf(producer).Record();
    stream_.Queue([mark] { mark->Wait(); });
    return braid::Status::OK();
  }
  braid::Status Synchronize() override {
    stream_.Drain();
    return braid::Status::OK();
  }
  braid::Status ScaledCopies(const std::vector<braid::DeviceCopy>& copies, braid::DataType dtype,
                             double factor, int64_t divisor) override {
    if (Fails(InjectedFaults().copies)) return Injected("the copy could not be queued");
    stream_.Queue([=] {
      for (const braid::DeviceCopy& c : copies)
        braid::cpu::ScaleCopy(c.dst, c.src, c.count, dtype, factor, divisor);
    });
    return braid::Status::OK();
  }
  braid::Status Allocate(int64_t bytes, bool zero, std::shared_ptr<void>* memory) override {
    if (Fails(InjectedFaults().allocate)) return Injected("out of device memory");
    void* p = std::malloc(static_cast<size_t>(bytes > 0 ? bytes : 1));
    if (zero) stream_.Queue([p, bytes] { std::memset(p, 0, static_cast<size_t>(bytes)); });
    *memory = std::shared_ptr<void>(p, std::free);
    return braid::Status::OK();
  }
  braid::Status FusionBuffer(int64_t bytes, void** data) override {
    if (Fails(InjectedFaults().fusion_buffer)) return Injected("no device fusion buffer");
    if (static_cast<int64_t>(fusion_.size()) < bytes) fusion_.resize(static_cast<size_t>(bytes));
    *data = fusion_.data();
    return braid::Status::OK();
  }
  // The sparse kernels: the host's, queued on the stream like a device's.
  braid::Status Zero(void* data, int64_t bytes) override {
    stream_.Queue([=] { std::memset(data, 0, static_cast<size_t>(bytes)); });
    return braid::Status::OK();
  }
  braid::Status ScatterAdd(void* dense, int64_t length, int64_t row, braid::DataType dtype,
                           const void* indices, braid::DataType index_dtype, const void* values,
                           int64_t count, double factor) override {
    stream_.Queue([=] {
      braid::cpu::ScatterAdd(dense, length, row, dtype, indices, index_dtype, values, count,
                             factor);
    });
    return braid::Status::OK();
  }
  braid::Status FindIndexOutOfRange(const void* indices, braid::DataType index_dtype, int64_t count,
                                    int64_t length, int64_t* position, int64_t* value) override {
    stream_.Drain();  // after what the stream had queued, as on a device
    *position = braid::cpu::FindIndexOutOfRange(indices, index_dtype, count, length, value);
    return braid::Status::OK();
  }
  // The neighbour collectives' mixing pass: the host's, queued on the stream.
  braid::Status Mix(const braid::MixArgs& args) override {
    if (!braid::cpu::IsMixDataType(args.dtype)) return braid::cpu::Mix(args);  // its refusal
    stream_.Queue([args] { (void)braid::cpu::Mix(args); });
    return braid::Status::OK();
  }

 private:
  int device_;
  Stream stream_;
  std::vector<char> fusion_;
};

// The host backend on "device" buffers, after the streams they name have drained.
class Backend : public braid::Backend {
 public:
  Backend(braid::Backend* host, int device) : host_(host), device_(device) {}
  const char* name() const override { return "fake device"; }
  bool CanHandle(int device) const override { return device == device_; }
  braid::Status Prepare(int64_t) override {
    if (Fails(InjectedFaults().prepare)) return Injected("no staging memory");
    return braid::Status::OK();
  }
  braid::Status Allreduce(const braid::BufferView& buf, braid::ReduceOp op) override {
    return host_->Allreduce(OnHost(buf), op);
  }
  braid::Status AllreduceMany(const std::vector<braid::BufferView>& buffers, braid::ReduceOp op,
                              const braid::BufferView& staging) override {
    return AllreduceScaled(buffers, op, staging, braid::ReduceScaling());
  }
  // The base class's host scaling around the host backend's reduction.
  braid::Status AllreduceScaled(const std::vector<braid::BufferView>& buffers, braid::ReduceOp op,
                                const braid::BufferView& staging,
                                const braid::ReduceScaling& scaling) override {
    ++CollectivesEntered();
    std::vector<braid::BufferView> host;
    for (const braid::BufferView& b : buffers) host.push_back(OnHost(b));
    braid::BufferView host_staging = OnHost(staging);
    return host_->AllreduceScaled(host, op, host_staging, scaling);
  }
  braid::Status Allgatherv(const braid::BufferView& send, const braid::BufferView& recv,
                           const std::vector<int64_t>& counts) override {
    return host_->Allgatherv(OnHost(send), OnHost(recv), counts);
  }
  braid::Status Broadcast(const braid::BufferView& buf, int root) override {
    return host_->Broadcast(OnHost(buf), root);
  }
  braid::Status Barrier() override { return host_->Barrier(); }
  braid::Status NeighborExchange(const std::vector<braid::PeerBuffer>& sends,
                                 const std::vector<braid::PeerBuffer>& recvs) override {
    std::vector<braid::PeerBuffer> host_sends = sends, host_recvs = recvs;
    for (auto& s : host_sends) s.buf = OnHost(s.buf);
    for (auto& r : host_recvs) r.buf = OnHost(r.buf);
    return host_->NeighborExchange(host_sends, host_recvs);
  }

 private:
  static braid::BufferView OnHost(braid::BufferView v) {
    StreamOf(v.stream).Drain();
    v.device = braid::kCpuDevice;
    v.stream = nullptr;
    return v;
  }
  braid::Backend* host_;
  int device_;
};

inline braid::DevicePlane CreatePlane(braid::ControlChannel*, const braid::WorldInfo&,
                                      braid::Backend* host_backend,
                                      const braid::DevicePlaneOptions& options) {
  braid::DevicePlane plane;
  if (Fails(InjectedFaults().create_plane)) {
    plane.failure = Injected("the device plane could not be set up");
    return plane;
  }
  plane.backend = std::make_unique<Backend>(host_backend, options.device);
  plane.ops = std::make_unique<Ops>(options.device);
  return plane;
}

inline void RegisterFakeDevicePlugin() {
  braid::DevicePlugin plugin;
  plugin.create_plane = &CreatePlane;
  plugin.record_ready = &RecordReady;
  braid::RegisterDevicePlugin(plugin);
}

}  // namespace fake
