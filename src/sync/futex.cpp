#include "tandem/detail/futex.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <ctime>

namespace tandem::detail {
namespace {

long futex(std::atomic<std::uint32_t>& word, int op, std::uint32_t value, const timespec* timeout) {
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
  return syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), op, value, timeout, nullptr, 0);
}

}  // namespace

bool futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, Clock::time_point deadline) {
  if (deadline == Clock::time_point::max()) {
    futex(word, FUTEX_WAIT, expected, nullptr);
    return true;
  }
  const auto now = Clock::now();
  if (now >= deadline) return false;
  const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - now);
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(left.count() / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(left.count() % 1'000'000'000);
  if (futex(word, FUTEX_WAIT, expected, &ts) == -1 && errno == ETIMEDOUT) return Clock::now() < deadline;
  return true;
}

void futex_wake(std::atomic<std::uint32_t>& word, int count) { futex(word, FUTEX_WAKE, static_cast<std::uint32_t>(count), nullptr); }

}  // namespace tandem::detail
