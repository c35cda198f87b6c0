#include "plot.h"

#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

extern char** environ;

namespace bench {
namespace {

constexpr int kNoMatplotlib = 3;  // busbw_plot.py's exit status without matplotlib

bool IsFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string ExecutableDir() {
  char path[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) return "";
  path[n] = '\0';
  char* slash = std::strrchr(path, '/');
  return slash == nullptr ? "" : std::string(path, slash);
}

// Runs argv (argv[0] looked up in PATH) and returns its exit status, 127 when it
// could not be started, or 128 + signal.
int Spawn(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) return 127;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return 127;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 127;
}

}  // namespace

std::string FindPlotScript() {
  const std::string beside = ExecutableDir() + "/busbw_plot.py";
  if (IsFile(beside)) return beside;
#ifdef BRAID_BENCH_SOURCE_DIR
  const std::string source = std::string(BRAID_BENCH_SOURCE_DIR) + "/busbw_plot.py";
  if (IsFile(source)) return source;
#endif
  return "";
}

bool WritePlot(const std::string& python, const std::string& json_path,
               const std::string& png_path) {
  const std::string script = FindPlotScript();
  if (script.empty()) {
    std::fprintf(stderr,
                 "braid-bench: warning: --plot: busbw_plot.py is neither next to this "
                 "executable nor in its source tree; no plot written\n");
    return false;
  }
  std::fflush(stdout);
  const int code = Spawn({python, script, json_path, "-o", png_path});
  const char* py = python.c_str();
  if (code == 0 && IsFile(png_path)) return true;
  if (code == kNoMatplotlib) {
    std::fprintf(stderr,
                 "braid-bench: warning: --plot: %s cannot import matplotlib; no plot written "
                 "(the results above are complete; give a Python that has it with "
                 "--plot-python, or keep the JSON with -J and run %s on it later)\n",
                 py, script.c_str());
  } else if (code == 127) {
    std::fprintf(stderr, "braid-bench: warning: --plot: could not run %s; no plot written\n", py);
  } else {
    std::fprintf(stderr, "braid-bench: warning: --plot: %s %s exited with status %d\n", py,
                 script.c_str(), code);
  }
  return false;
}

std::string TemporaryJsonPath() {
  const char* dir = std::getenv("TMPDIR");
  std::string path =
      std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/braid-bench-XXXXXX.json";
  std::vector<char> name(path.begin(), path.end());
  name.push_back('\0');
  const int fd = mkstemps(name.data(), 5);
  if (fd < 0) return "";
  close(fd);
  return name.data();
}

}  // namespace bench
