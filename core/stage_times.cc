#include "core/stage_times.h"

#include <atomic>

namespace braid {
namespace {

struct Total {
  std::atomic<int64_t> count{0};
  std::atomic<int64_t> nanoseconds{0};
};

Total* Totals() {
  static Total totals[kNumStages];
  return totals;
}

int Index(Stage stage) {
  const int i = static_cast<int>(stage);
  return i >= 0 && i < kNumStages ? i : -1;
}

}  // namespace

const char* StageName(Stage stage) {
  switch (stage) {
    case Stage::kSubmit:
      return "submit";
    case Stage::kHandoff:
      return "handoff";
    case Stage::kNegotiate:
      return "negotiate";
    case Stage::kExecute:
      return "execute";
    case Stage::kWake:
      return "wake";
  }
  return "unknown";
}

void RecordStageTimes(Stage stage, Clock::duration elapsed, int64_t times) {
  const int i = Index(stage);
  if (i < 0 || times <= 0) return;
  const int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count();
  Totals()[i].count.fetch_add(times, std::memory_order_relaxed);
  Totals()[i].nanoseconds.fetch_add(ns * times, std::memory_order_relaxed);
}

void RecordStage(Stage stage, Clock::duration elapsed) {
  RecordStageTimes(stage, elapsed, 1);
}

StageTotal ReadStage(Stage stage) {
  StageTotal out;
  const int i = Index(stage);
  if (i < 0) return out;
  out.count = Totals()[i].count.load(std::memory_order_relaxed);
  out.nanoseconds = Totals()[i].nanoseconds.load(std::memory_order_relaxed);
  return out;
}

void ResetStageTimes() {
  for (int i = 0; i < kNumStages; ++i) {
    Totals()[i].count.store(0, std::memory_order_relaxed);
    Totals()[i].nanoseconds.store(0, std::memory_order_relaxed);
  }
}

}  // namespace braid
