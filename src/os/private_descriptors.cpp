#include "os/private_descriptors.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>

namespace tandem::detail {
namespace {

// The limit a worker raises its soft limit to, when the hard limit allows: far enough above 1024
// (FD_SETSIZE, where loops that close "every descriptor" usually stop), low enough that a task's
// loop up to sysconf(_SC_OPEN_MAX) stays cheap.
constexpr rlim_t kWorkerSoftLimit = 4096;
// Room below the limit for the worker's own: channel, wake-up, response file, spares, requests.
constexpr int kPrivateDescriptors = 128;

// 0 but in a worker process; set once, before the worker's first descriptor of its own.
std::atomic<int> floor_descriptor{0};

}  // namespace

void keep_private_descriptors_high() noexcept {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < kWorkerSoftLimit) {
    const rlimit raised{std::min(limit.rlim_max, kWorkerSoftLimit), limit.rlim_max};
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  const auto soft = static_cast<int>(std::min<rlim_t>(limit.rlim_cur, 1 << 20));
  floor_descriptor.store(std::max(3, soft - kPrivateDescriptors), std::memory_order_relaxed);
}

int out_of_the_way(int fd) noexcept {
  const int floor = floor_descriptor.load(std::memory_order_relaxed);
  if (floor == 0 || fd < 0 || fd >= floor) return fd;
  const int high = ::fcntl(fd, F_DUPFD_CLOEXEC, floor);
  if (high < 0) return fd;  // no room up there: it works where it is
  ::close(fd);
  return high;
}

}  // namespace tandem::detail
