#include "core/ready_event.h"

#include <mutex>

#include "collectives/device_plane.h"
#include "collectives/transport.h"
#include "common/logging.h"

namespace braid {

void RecordReady(Request* request) {
  DevicePlugin plugin;
  if (!DeviceTensorsSupported() || !LoadDevicePlugin(&plugin).ok()) return;
  // Recording and numbering happen together, so that of two events on one stream
  // the one recorded later has the higher number.
  static std::mutex mu;
  static uint64_t recorded = 0;
  std::lock_guard<std::mutex> lock(mu);
  const Status st = plugin.record_ready(request->meta.device, request->stream, &request->ready);
  if (!st.ok()) {
    BRAID_LOG(Debug) << "'" << request->meta.name << "': no ready event: " << st.message();
    request->ready.reset();
    return;
  }
  request->ready_order = ++recorded;
}

}  // namespace braid
