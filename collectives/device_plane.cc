#include "collectives/device_plane.h"

#include <dlfcn.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>

#include "common/logging.h"

namespace braid {
namespace {

constexpr char kPluginFile[] = "libbraid_cuda.so";

// Constant-initialised, so the plugin's initializer may register before or after
// anything else in libbraid has run. The recorder is stored first, so a factory
// seen set means the recorder is too.
std::atomic<ReadyRecorder> g_record_ready{nullptr};
std::atomic<DevicePlaneFactory> g_factory{nullptr};

bool Registered(DevicePlugin* out) {
  DevicePlaneFactory factory = g_factory.load();
  if (factory == nullptr) return false;
  out->create_plane = factory;
  out->record_ready = g_record_ready.load();
  return true;
}

// Any object inside libbraid: dladdr maps its address to the file libbraid was
// loaded from.
const char kAnchor = 0;

// The directory libbraid was loaded from, with a trailing slash; empty if unknown.
std::string LibbraidDirectory() {
  Dl_info info;
  if (dladdr(&kAnchor, &info) == 0 || info.dli_fname == nullptr) return "";
  const std::string path = info.dli_fname;
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash + 1);
}

// dlopen's flags:
// - RTLD_NOW binds every undefined symbol of the plugin and of its libcudart and
//   libnccl at load time, so a library that lacks one fails here with dlerror's
//   message naming it, rather than killing the process at the first call (a lazy
//   binding failure cannot become a Status).
// - RTLD_LOCAL because nothing needs the plugin's symbols by name: it hands its
//   factory over through RegisterDevicePlugin and finds libbraid through its
//   own DT_NEEDED. RTLD_GLOBAL would also put the plugin's libcudart and libnccl
//   into the global scope, where they would interpose on a framework's own copies
//   loaded later, which is the clash this plugin exists to avoid.
// The handle is never closed (see device_plane.h).
Status OpenPlugin(const std::string& path) {
  if (dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL) != nullptr) return Status::OK();
  const char* error = dlerror();
  return BackendError("cannot load the GPU data plane (" + path +
                      "): " + (error != nullptr ? error : "unknown dlopen error"));
}

Status LoadPlugin() {
  const std::string directory = LibbraidDirectory();
  const std::string beside = directory + kPluginFile;
  if (!directory.empty() && access(beside.c_str(), F_OK) == 0) {
    // The copy installed with this libbraid; a failure here is not papered over
    // with one from another build elsewhere on the search path.
    BRAID_LOG(Debug) << "loading the GPU data plane from " << beside;
    return OpenPlugin(beside);
  }
  Status status = OpenPlugin(kPluginFile);
  if (!status.ok() && !directory.empty()) {
    return BackendError(status.message() + " (not found next to libbraid in " + directory + ")");
  }
  return status;
}

}  // namespace

void RegisterDevicePlugin(const DevicePlugin& plugin) {
  g_record_ready.store(plugin.record_ready);
  g_factory.store(plugin.create_plane);
}

bool DevicePluginRegistered() {
  return g_factory.load() != nullptr;
}

Status LoadDevicePlugin(DevicePlugin* out) {
  if (Registered(out)) return Status::OK();
  // Engines in several threads may ask at once; one dlopen is enough.
  static std::mutex loading;
  std::lock_guard<std::mutex> lock(loading);
  if (Registered(out)) return Status::OK();
  BRAID_RETURN_IF_ERROR(LoadPlugin());
  if (!Registered(out) || out->record_ready == nullptr) {
    return Internal(std::string("the GPU data plane (") + kPluginFile +
                    ") was loaded but registered nothing (a plugin from another build?)");
  }
  return Status::OK();
}

}  // namespace braid
