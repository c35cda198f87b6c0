// One allreduce (a sum) of packed buffers with the step-agreement slots
// (step_check.h) after them: what a restart, and the gossip op's exact average,
// send. The buffers are gathered into `memory`, the slots appended, the sum
// requested under `name` and waited for, and the slots checked; the sums stay in
// `memory` (from offset 0) for the caller to scatter.
//
// Threading: as the op that owns `memory`.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/buffer.h"
#include "common/status.h"
#include "core/handle.h"
#include "core/request.h"
#include "ops/restart/pack_memory.h"

namespace braid::restart {

// How an op reaches an engine: Engine::Enqueue, or a binding's default engine.
using EnqueueFn = std::function<Status(Request request, std::shared_ptr<Handle>* handle)>;

struct CheckedSum {
  std::string name;  // the allreduce's (and the mismatch message's) name
  int64_t step = 0;  // this rank's step counter, compared across ranks
  DataType dtype = DataType::kFloat32;
  int device = kCpuDevice;
  void* stream = nullptr;
};

// Sums the concatenation of `parts` over the ranks; *ranks: how many took part.
Status SumWithStepCheck(const EnqueueFn& enqueue, const CheckedSum& sum,
                        const std::vector<BufferView>& parts, PackMemory* memory, int64_t* ranks);

}  // namespace braid::restart
