#include "core/engine.h"

#include <mutex>
#include <set>
#include <string>

#include "common/logging.h"
#include "core/ready_event.h"

namespace braid {
namespace {

// Rank 0 names each BRAID_* variable that nothing reads, once per process: a
// misspelt setting would otherwise be silently left at its default.
void WarnAboutUnknownVariables() {
  static std::mutex mutex;
  static std::set<std::string> warned;
  std::lock_guard<std::mutex> lock(mutex);
  for (const UnknownConfigVar& var : FindUnknownConfigVars(EnvironmentNames())) {
    if (warned.insert(var.name).second) {
      BRAID_LOG(Warning) << DescribeUnknownConfigVar(var);
    }
  }
}

}  // namespace

Status Engine::Create(const EngineOptions& options, std::unique_ptr<Engine>* out) {
  Config config;
  BRAID_RETURN_IF_ERROR(LoadConfigFromEnv(&config));
  return Create(options, config, out);
}

Status Engine::Create(const EngineOptions& options, const Config& config,
                      std::unique_ptr<Engine>* out) {
  SetLogLevel(config.log_level);
  TransportOptions transport_options;
  transport_options.mpi_comm = options.mpi_comm;
  transport_options.device_stall_timeout_seconds = config.stall_timeout_seconds;
  transport_options.gpu_backend = config.gpu_backend;
  std::unique_ptr<Transport> transport;
  BRAID_RETURN_IF_ERROR(CreateTransport(transport_options, &transport));
  SetLogRank(transport->info().rank);
  if (transport->info().rank == 0) WarnAboutUnknownVariables();
  std::unique_ptr<Timeline> timeline;
  BRAID_RETURN_IF_ERROR(Timeline::Open(config.timeline_path, transport->info().rank, &timeline));
  out->reset(new Engine(config, options, std::move(transport), std::move(timeline)));
  BRAID_LOG(Debug) << "engine started: rank " << (*out)->world().rank << " of "
                   << (*out)->world().size;
  return Status::OK();
}

Engine::Engine(const Config& config, const EngineOptions& options,
               std::unique_ptr<Transport> transport, std::unique_ptr<Timeline> timeline)
    : config_(config), transport_(std::move(transport)), timeline_(std::move(timeline)) {
  coordinator_ = std::make_unique<Coordinator>(transport_.get(), &queue_, config_, timeline_.get(),
                                               options.after_round);
  coordinator_->Start();
}

Engine::~Engine() {
  Shutdown();
  // The coordinator goes first: it uses the timeline and the transport.
  coordinator_.reset();
  timeline_.reset();
  transport_.reset();
}

void Engine::Shutdown() {
  coordinator_->RequestStop();
  coordinator_->Join();
}

bool Engine::running() const {
  return coordinator_->running();
}

Status Engine::Enqueue(Request request, std::shared_ptr<Handle>* handle) {
  const bool has_data = request.meta.collective != Collective::kBarrier &&
                        request.meta.collective != Collective::kJoin;
  if (request.meta.collective == Collective::kJoin) {
    // A join carries no tensor; its name is fixed so that a second join in flight
    // on this rank is refused as a duplicate.
    request.meta = RequestMeta();
    request.meta.collective = Collective::kJoin;
    request.meta.name = kJoinName;
  } else if (request.meta.name == kJoinName) {
    return InvalidArgument(std::string("the name '") + kJoinName + "' is reserved for join");
  }
  BRAID_RETURN_IF_ERROR(ValidateRequest(request.meta, world().size));
  if (has_data && request.meta.NumElements() > 0 &&
      (request.input == nullptr ||
       (request.meta.collective != Collective::kAllgather && request.output == nullptr))) {
    return InvalidArgument("'" + request.meta.name + "': the data pointer is null");
  }
  if (has_data && request.meta.device != kCpuDevice) RecordReady(&request);
  if (!request.handle) request.handle = std::make_shared<Handle>();
  request.enqueued_at = Clock::now();
  std::shared_ptr<Handle> h = request.handle;
  BRAID_RETURN_IF_ERROR(queue_.Add(std::move(request)));
  *handle = std::move(h);
  return Status::OK();
}

}  // namespace braid
