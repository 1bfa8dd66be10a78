// The blocking wake-up floor: two threads hand a token back and forth through one futex word,
// each sleeping in the kernel until woken (no spinning).
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "peers.hpp"

namespace tandem::bench {
namespace {

void wait_while(std::atomic<std::uint32_t>& word, std::uint32_t value) {
  while (word.load(std::memory_order_acquire) == value) {
    syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, value, nullptr, nullptr, 0);
  }
}

void set_and_wake(std::atomic<std::uint32_t>& word, std::uint32_t value) {
  word.store(value, std::memory_order_release);
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

}  // namespace

double futex_round_trip(std::size_t trips) {
  std::atomic<std::uint32_t> turn{0};  // even: the main thread's turn; odd: the echo thread's
  std::thread echo([&] {
    for (std::uint32_t i = 0; i < trips; ++i) {
      wait_while(turn, 2 * i);
      set_and_wake(turn, 2 * i + 2);
    }
  });
  const auto start = std::chrono::steady_clock::now();
  for (std::uint32_t i = 0; i < trips; ++i) {
    set_and_wake(turn, 2 * i + 1);
    wait_while(turn, 2 * i + 1);
  }
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  echo.join();
  return elapsed / static_cast<double>(trips);
}

}  // namespace tandem::bench
