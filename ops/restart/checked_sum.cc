#include "ops/restart/checked_sum.h"

#include "ops/restart/step_check.h"

namespace braid::restart {

Status SumWithStepCheck(const EnqueueFn& enqueue, const CheckedSum& sum,
                        const std::vector<BufferView>& parts, PackMemory* memory, int64_t* ranks) {
  int64_t payload = 0;
  for (const BufferView& v : parts) payload += v.count;
  const int64_t total = payload + kCheckSlots;
  BRAID_RETURN_IF_ERROR(memory->Reserve(total));
  BRAID_RETURN_IF_ERROR(memory->Gather(parts, memory->data(), 0));
  std::vector<char> slots(static_cast<size_t>(kCheckSlots) * DataTypeSize(sum.dtype));
  WriteCheckSlots(sum.step, sum.dtype, slots.data());
  BRAID_RETURN_IF_ERROR(memory->WriteFromHost(payload, slots.data(), kCheckSlots, sum.stream));

  Request r;
  r.meta.name = sum.name;
  r.meta.collective = Collective::kAllreduce;
  r.meta.dtype = sum.dtype;
  r.meta.op = ReduceOp::kSum;
  r.meta.device = sum.device;
  r.meta.shape = {total};
  r.input = r.output = memory->data();
  r.stream = sum.stream;
  std::shared_ptr<Handle> handle;
  BRAID_RETURN_IF_ERROR(enqueue(std::move(r), &handle));
  BRAID_RETURN_IF_ERROR(handle->Wait());

  BRAID_RETURN_IF_ERROR(memory->ReadToHost(payload, slots.data(), kCheckSlots, sum.stream));
  return ReadCheckSlots(slots.data(), sum.dtype, sum.step, sum.name, ranks);
}

}  // namespace braid::restart
