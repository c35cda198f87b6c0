// braid::Engine: one instance of the collective engine. It owns its config, the
// transport (control channel and backends), the pending table, the timeline and the
// coordinator thread. The C and Python APIs hold one default engine; tests may
// build several in sequence.
//
// Init and shutdown are collective: every rank of the communicator calls them.
//
// Threading: Enqueue and the queries may be called from any thread at once.
// Shutdown must not race with the destructor.
#pragma once

#include <memory>
#include <vector>

#include "collectives/transport.h"
#include "common/status.h"
#include "core/config.h"
#include "core/coordinator.h"
#include "core/placement.h"
#include "core/request.h"
#include "core/tensor_queue.h"
#include "core/timeline.h"

namespace braid {

struct EngineOptions {
  // An MPI_Comm* to run on; null means MPI_COMM_WORLD.
  const void* mpi_comm = nullptr;
  // Called after each negotiation round with what it agreed on, before any of it
  // runs, on the thread that ran the round: the coordinator's, or a waiting
  // caller's (core/coordinator.h) (null: nothing). A seam for tests that must
  // act at exactly that point, such as submitting a request the round did not see.
  RoundHook after_round;
};

class Engine {
 public:
  // Builds an engine with the configuration from the BRAID_* environment.
  static Status Create(const EngineOptions& options, std::unique_ptr<Engine>* out);
  static Status Create(const EngineOptions& options, const Config& config,
                       std::unique_ptr<Engine>* out);
  ~Engine();

  // Stops the coordinator (on every rank: the request travels in the next round);
  // pending operations fail with kAborted. Idempotent.
  void Shutdown();
  bool running() const;

  const WorldInfo& world() const { return transport_->info(); }
  const Config& config() const { return config_; }
  // Where this rank runs and keeps its buffers (core/placement.h).
  const RankPlacement& placement() const { return *placement_; }
  // The NUMA nodes holding the fusion buffer's touched pages (empty: unknown or
  // none touched yet), to check placement from outside.
  std::vector<int> FusionBufferNodes() const;

  // Submits a request; on success *handle completes when the ranks have run it.
  // A join (Collective::kJoin) carries no tensor and is named kJoinName; its
  // handle's int_result() is the rank that joined last. Other requests may not
  // use that name.
  Status Enqueue(Request request, std::shared_ptr<Handle>* handle);

 private:
  // Builds the coordinator on `transport`, which Create hands over (transport_)
  // once every rank has agreed that its engine could be built.
  Engine(const Config& config, const EngineOptions& options, Transport* transport,
         std::unique_ptr<Timeline> timeline);

  Config config_;
  std::unique_ptr<RankPlacement> placement_;
  std::unique_ptr<Transport> transport_;
  std::unique_ptr<Timeline> timeline_;
  TensorQueue queue_;
  std::unique_ptr<Coordinator> coordinator_;
};

}  // namespace braid
