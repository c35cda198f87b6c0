// Where the time of one operation goes, stage by stage, summed over the process's
// operations: the engine's fixed cost made visible (docs/engine.md, "Fixed cost").
//
// The stages of one request, in order:
//   kSubmit    Engine::Enqueue: checks, the handle, the pending table
//   kHandoff   queued until the coordinator took it into a round (its wake-up)
//   kNegotiate taken until its group started executing (the round(s) with the
//              other ranks: the bit-vector AND, or the negotiation through rank 0,
//              and waiting there for late ranks)
//   kExecute   its group's collective: packing, the data plane, unpacking
//   kWake      completed until a waiter blocked in Handle::Wait returned (counted
//              only for waits that had to block)
// A fused group's execution counts once per request in it.
//
// Threading: every function is thread-safe (relaxed atomics).
#pragma once

#include <cstdint>

#include "core/request.h"

namespace braid {

enum class Stage : int { kSubmit = 0, kHandoff, kNegotiate, kExecute, kWake };
constexpr int kNumStages = 5;

struct StageTotal {
  int64_t count = 0;
  int64_t nanoseconds = 0;
};

const char* StageName(Stage stage);

void RecordStage(Stage stage, Clock::duration elapsed);
// Records the same duration for `times` requests at once.
void RecordStageTimes(Stage stage, Clock::duration elapsed, int64_t times);
StageTotal ReadStage(Stage stage);
void ResetStageTimes();

}  // namespace braid
