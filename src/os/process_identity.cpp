#include "tandem/detail/process_identity.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace tandem::detail {
namespace {

// Field 3 (state) and field 22 (start time, in clock ticks since boot) of /proc/<pid>/stat;
// false if the process is gone. The command name (field 2) may hold spaces and parentheses, so
// parsing starts after its last ')'.
bool read_stat(std::int32_t pid, char& state, std::uint64_t& start_time) {
  char path[32];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char text[1024];
  const ssize_t n = ::read(fd, text, sizeof text - 1);
  ::close(fd);
  if (n <= 0) return false;
  text[n] = '\0';
  const char* at = std::strrchr(text, ')');
  if (at == nullptr || at[1] != ' ') return false;
  at += 2;
  state = *at;
  for (int field = 3; field < 22; ++field) {
    at = std::strchr(at, ' ');
    if (at == nullptr) return false;
    ++at;
  }
  start_time = std::strtoull(at, nullptr, 10);
  return true;
}

}  // namespace

ProcessIdentity ProcessIdentity::self() {
  static std::atomic<std::int32_t> cached_pid{0};
  static std::atomic<std::uint64_t> cached_start{0};
  const auto pid = static_cast<std::int32_t>(::getpid());
  if (cached_pid.load(std::memory_order_acquire) != pid) {
    char state = 0;
    std::uint64_t start = 0;
    read_stat(pid, state, start);
    cached_start.store(start, std::memory_order_relaxed);
    cached_pid.store(pid, std::memory_order_release);
  }
  return {pid, cached_start.load(std::memory_order_relaxed)};
}

ProcessIdentity ProcessIdentity::of(std::int32_t pid) {
  char state = 0;
  std::uint64_t start = 0;
  if (!read_stat(pid, state, start)) return {pid, 0};
  return {pid, start};
}

bool ProcessIdentity::alive() const {
  char state = 0;
  std::uint64_t start = 0;
  if (!read_stat(pid, state, start)) return false;
  return start == start_time && state != 'Z' && state != 'X';
}

}  // namespace tandem::detail
