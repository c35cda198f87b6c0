// Ready events: the point a GPU tensor's producer stream has reached when the
// tensor is handed to the engine. The engine's copies and collective wait for that
// event, not for the stream as it is when the coordinator gets to the request, so
// they never wait for work the framework queued after the call (the rest of the
// backward pass, say) and can overlap with it.
//
// Threading: any thread.
#pragma once

#include "core/request.h"

namespace braid {

// Records the ready event of `request` (a GPU tensor) on its stream, through the
// device plugin (loading it if this is the first GPU tensor). When none can be
// recorded (no plugin, no usable GPU, a stream that cannot be recorded on) the
// request goes on without one: the executor then orders after the stream as it is
// when the request runs, and reports the device's failure there, where every rank
// takes part in the collective and none is left waiting.
void RecordReady(Request* request);

}  // namespace braid
