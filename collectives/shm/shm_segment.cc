#include "collectives/shm/shm_segment.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <random>
#include <sstream>

namespace braid {
namespace shm {
namespace {

constexpr int64_t kPageBytes = 4096;

int64_t RoundUpToPage(int64_t bytes) {
  return (bytes + kPageBytes - 1) / kPageBytes * kPageBytes;
}

std::string Describe(const char* call, const std::string& name, int err) {
  return std::string("shm: ") + call + "(" + name + ") failed: " + std::strerror(err);
}

// Reads one byte of every page, so that no page faults in the middle of a
// collective (MAP_POPULATE asks for the same; this makes sure of it).
void TouchEveryPage(const char* base, int64_t bytes) {
  volatile char sink = 0;
  for (int64_t offset = 0; offset < bytes; offset += kPageBytes) sink = sink + base[offset];
  (void)sink;
}

}  // namespace

int64_t SegmentLayout::ControlBytes() const {
  return RoundUpToPage(static_cast<int64_t>(ranks) * static_cast<int64_t>(sizeof(RankControl)));
}

std::string ShmSegment::UniqueName() {
  std::random_device random;
  std::ostringstream name;
  name << "/braid-" << getpid() << "-" << std::hex << random() << random();
  return name.str();
}

Status ShmSegment::Create(const std::string& name, const SegmentLayout& layout,
                          std::unique_ptr<ShmSegment>* out) {
  std::unique_ptr<ShmSegment> segment(new ShmSegment(name, layout));
  const int fd = shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd < 0) return BackendError(Describe("shm_open", name, errno));
  segment->linked_ = true;  // from here on the destructor unlinks on failure
  // Reserved now: a tmpfs that cannot hold the segment fails here, not with a
  // SIGBUS on first touch.
  const int err = posix_fallocate(fd, 0, static_cast<off_t>(layout.TotalBytes()));
  if (err != 0) {
    close(fd);
    return BackendError(Describe("posix_fallocate", name, err) + " (" +
                        std::to_string(layout.TotalBytes()) + " bytes)");
  }
  BRAID_RETURN_IF_ERROR(segment->Map(fd, true));
  *out = std::move(segment);
  return Status::OK();
}

Status ShmSegment::Open(const std::string& name, const SegmentLayout& layout,
                        std::unique_ptr<ShmSegment>* out) {
  std::unique_ptr<ShmSegment> segment(new ShmSegment(name, layout));
  const int fd = shm_open(name.c_str(), O_RDWR, 0600);
  if (fd < 0) return BackendError(Describe("shm_open", name, errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size != static_cast<off_t>(layout.TotalBytes())) {
    close(fd);
    return BackendError("shm: " + name + " does not have the expected size of " +
                        std::to_string(layout.TotalBytes()) + " bytes");
  }
  BRAID_RETURN_IF_ERROR(segment->Map(fd, false));
  *out = std::move(segment);
  return Status::OK();
}

Status ShmSegment::Map(int fd, bool created) {
  const int64_t bytes = layout_.TotalBytes();
  void* base = mmap(nullptr, static_cast<size_t>(bytes), PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_POPULATE, fd, 0);
  const int err = errno;
  close(fd);  // the mapping keeps the memory
  if (base == MAP_FAILED) return BackendError(Describe("mmap", name_, err));
  base_ = static_cast<char*>(base);
  if (created) {
    // The file is zero-filled; the counters start at zero on every rank.
    for (int r = 0; r < layout_.ranks; ++r) new (&controls()[r]) RankControl();
    for (int r = 0; r < layout_.ranks; ++r) {
      controls()[r].phase.store(0);
      controls()[r].sleepers.store(0);
      controls()[r].pid.store(0);
    }
  }
  TouchEveryPage(base_, bytes);
  return Status::OK();
}

Status ShmSegment::Unlink() {
  if (!linked_) return Status::OK();
  linked_ = false;
  if (shm_unlink(name_.c_str()) != 0) return BackendError(Describe("shm_unlink", name_, errno));
  return Status::OK();
}

ShmSegment::~ShmSegment() {
  if (linked_) shm_unlink(name_.c_str());
  if (base_ != nullptr) munmap(base_, static_cast<size_t>(layout_.TotalBytes()));
}

}  // namespace shm
}  // namespace braid
