// Thin wrappers over Linux futex(2) for a 32-bit atomic word, plus the spin-then-sleep wait that
// every blocking call in tandem uses. The word may live in process-shared memory, so the futex
// calls are deliberately not FUTEX_PRIVATE.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace tandem::detail {

using Clock = std::chrono::steady_clock;

// Sleeps while `word == expected`, until woken or `deadline` passes (Clock::time_point::max()
// means no deadline). Returns false only when the deadline passed. Spurious returns are allowed;
// callers re-check their condition.
bool futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, Clock::time_point deadline);

// Wakes up to `count` sleepers on `word`.
void futex_wake(std::atomic<std::uint32_t>& word, int count);
inline void futex_wake_all(std::atomic<std::uint32_t>& word) { futex_wake(word, 0x7fffffff); }

// One pause of a spin loop: lets the sibling hyperthread run and saves power.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// How long a waiter spins before it sleeps. A futex round trip costs ~55 us on the development
// machine while a spinning one costs ~0.1 us, so a short spin pays for itself whenever the
// answer comes soon; past this budget, sleeping keeps idle CPU at zero.
inline constexpr std::chrono::microseconds kSpinBudget{50};

}  // namespace tandem::detail
