#include "core/engine.h"

#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <set>
#include <string>

#include "collectives/agreement.h"
#include "common/guard.h"
#include "common/logging.h"
#include "core/ready_event.h"
#include "core/stage_times.h"

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

// The fusion buffer is address space reserved at start-up and memory once used:
// a threshold beyond the machine's memory could never be filled.
Status CheckFusionThreshold(const Config& config) {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return Status::OK();  // unknown: the registry's bound holds
  const int64_t memory = static_cast<int64_t>(pages) * page;
  if (config.fusion_threshold_bytes <= memory) return Status::OK();
  return InvalidArgument(
      "BRAID_FUSION_THRESHOLD_BYTES=" + std::to_string(config.fusion_threshold_bytes) +
      " is more than this machine's memory (" + std::to_string(memory) + " bytes)");
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
  // A device collective that stalls is the watchdog's (core/watchdog.h): it ends
  // the job on every rank instead of failing one rank's collective.
  transport_options.device_stall_timeout_seconds = 0;
  transport_options.gpu_backend = config.gpu_backend;
  transport_options.host_backend = config.host_backend;
  transport_options.fusion_threshold_bytes = config.fusion_threshold_bytes;
  transport_options.shm_slot_bytes = config.shm_slot_bytes;
  std::unique_ptr<Transport> transport;
  BRAID_RETURN_IF_ERROR(
      Guarded("the transport", [&] { return CreateTransport(transport_options, &transport); }));
  SetLogRank(transport->info().rank);
  if (transport->info().rank == 0) WarnAboutUnknownVariables();
  // What can fail on one rank alone is agreed on before any rank starts its
  // coordinator: the others must not run rounds that this rank never joins.
  std::unique_ptr<Engine> engine;
  std::unique_ptr<RankPlacement> placement;
  Status local = CheckFusionThreshold(config);
  if (local.ok()) {
    local = Guarded("placement",
                    [&] { return RankPlacement::Create(config, transport->info(), &placement); });
  }
  if (local.ok()) {
    local = Guarded("the braid engine", [&]() -> Status {
      std::unique_ptr<Timeline> timeline;
      BRAID_RETURN_IF_ERROR(
          Timeline::Open(config.timeline_path, transport->info().rank, &timeline));
      engine.reset(new Engine(config, options, transport.get(), std::move(timeline)));
      if (!engine->coordinator_->ready()) {
        return OutOfMemory("cannot reserve " + std::to_string(config.fusion_threshold_bytes) +
                           " bytes of address space for the fusion buffer "
                           "(BRAID_FUSION_THRESHOLD_BYTES)");
      }
      return Status::OK();
    });
  }
  const Status agreed = AgreeOnStatus(transport->control(), local);
  if (!agreed.ok()) {
    engine.reset();  // before the transport it uses
    return agreed;
  }
  engine->transport_ = std::move(transport);
  engine->placement_ = std::move(placement);
  const RankPlacement* placed = engine->placement_.get();
  placed->PlaceMemory(engine->coordinator_->fusion_buffer(),
                      static_cast<size_t>(engine->coordinator_->fusion_buffer_bytes()));
  // Touched before the placement was known: moved (core/placement.h).
  for (const HostRegion& region : engine->transport_->OwnedHostMemory())
    placed->PlaceMemory(region.data, region.bytes);
  engine->coordinator_->Start([placed] { placed->BindCoordinatorThread(); });
  BRAID_LOG(Debug) << "engine started: rank " << engine->world().rank << " of "
                   << engine->world().size;
  *out = std::move(engine);
  return Status::OK();
}

Engine::Engine(const Config& config, const EngineOptions& options, Transport* transport,
               std::unique_ptr<Timeline> timeline)
    : config_(config), timeline_(std::move(timeline)) {
  coordinator_ = std::make_unique<Coordinator>(transport, &queue_, config_, timeline_.get(),
                                               options.after_round);
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

std::vector<int> Engine::FusionBufferNodes() const {
  const int64_t touched = std::min(coordinator_->fusion_buffer_bytes(), int64_t{1} << 20);
  return placement_->MemoryNodes(coordinator_->fusion_buffer(), static_cast<size_t>(touched));
}

bool Engine::running() const {
  return coordinator_->running();
}

namespace {

// Pairs need indices and values; a sparse allreduce needs its dense output.
Status CheckSparsePointers(const Request& r) {
  const std::string what =
      std::string(CollectiveName(r.meta.collective)) + " of '" + r.meta.name + "': ";
  if (r.meta.pairs > 0 && SparseRowElements(r.meta) > 0 && r.input == nullptr)
    return InvalidArgument(what + "the values pointer is null");
  if (r.meta.pairs > 0 && r.indices == nullptr)
    return InvalidArgument(what + "the indices pointer is null");
  if (r.meta.collective == Collective::kSparseAllreduce && r.meta.NumElements() > 0 &&
      r.output == nullptr)
    return InvalidArgument(what + "the dense output pointer is null");
  return Status::OK();
}

}  // namespace

Status Engine::Enqueue(Request request, std::shared_ptr<Handle>* handle) {
  const Clock::time_point start = Clock::now();
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
  BRAID_RETURN_IF_ERROR(ValidateNeighborWeights(request, world().rank));
  if (IsSparse(request.meta.collective)) {
    BRAID_RETURN_IF_ERROR(CheckSparsePointers(request));
  } else if (has_data && request.meta.NumElements() > 0 &&
             (request.input == nullptr ||
              (request.meta.collective != Collective::kAllgather &&
               request.meta.collective != Collective::kNeighborExchange &&
               request.output == nullptr))) {
    return InvalidArgument("'" + request.meta.name + "': the data pointer is null");
  }
  if (has_data && request.meta.device != kCpuDevice) RecordReady(&request);
  if (!request.handle) request.handle = std::make_shared<Handle>();
  request.handle->SetDriver(coordinator_->driver());
  request.enqueued_at = Clock::now();
  std::shared_ptr<Handle> h = request.handle;
  BRAID_RETURN_IF_ERROR(queue_.Add(std::move(request)));
  RecordStage(Stage::kSubmit, Clock::now() - start);
  *handle = std::move(h);
  return Status::OK();
}

}  // namespace braid
