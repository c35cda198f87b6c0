// The plugin's ReadyRecorder (collectives/device_plane.h): an event recorded on a
// producer stream when a GPU tensor is enqueued. Events come from a per-device
// pool and go back to it when the engine is done with them, so enqueueing a
// tensor costs one cudaEventRecord, not an event's creation and destruction.
//
// Threading: any thread.
#pragma once

#include <memory>

#include "common/status.h"

namespace braid {
namespace cuda {

Status RecordReadyEvent(int device, void* stream, std::shared_ptr<void>* event);

}  // namespace cuda
}  // namespace braid
