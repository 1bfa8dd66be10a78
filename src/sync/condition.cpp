#include "tandem/condition.hpp"

#include <algorithm>
#include <optional>

#include "tandem/detail/wait.hpp"
#include "tandem/error.hpp"

namespace tandem {

namespace {

constexpr std::uint64_t kOneWaiter = std::uint64_t{1} << 32;
std::uint32_t waiters_in(std::uint64_t word) { return static_cast<std::uint32_t>(word >> 32); }
std::uint32_t wakeups_in(std::uint64_t word) { return static_cast<std::uint32_t>(word); }

// Takes a granted wake-up, if one is there, and with it leaves the waiters.
bool take_wakeup(std::atomic<std::uint64_t>& word) {
  std::uint64_t seen = word.load(std::memory_order_acquire);
  while (wakeups_in(seen) != 0) {
    if (word.compare_exchange_weak(seen, seen - kOneWaiter - 1, std::memory_order_acq_rel)) return true;
  }
  return false;
}

// At a deadline: a wake-up granted meanwhile is taken (the waiter was notified); otherwise the
// waiter leaves without one, so that no later notify grants it one.
bool take_wakeup_or_leave(std::atomic<std::uint64_t>& word) {
  std::uint64_t seen = word.load(std::memory_order_acquire);
  for (;;) {
    const bool granted = wakeups_in(seen) != 0;
    const std::uint64_t left = granted ? seen - kOneWaiter - 1 : seen - (waiters_in(seen) != 0 ? kOneWaiter : 0);
    if (word.compare_exchange_weak(seen, left, std::memory_order_acq_rel)) return granted;
  }
}

}  // namespace

unsigned Condition::release_whole() {
  const bool held = std::visit([](const auto& lock) { return lock.held_by_caller(); }, lock_);
  if (!held) throw Error("Condition::wait: the calling thread does not hold the condition's lock");
  if (auto* reentrant = std::get_if<RLock>(&lock_)) {
    const unsigned levels = std::max(1u, reentrant->hold_count());
    for (unsigned i = 0; i < levels; ++i) reentrant->unlock();
    return levels;
  }
  unlock();
  return 1;
}

void Condition::take_back(unsigned levels) {
  lock();
  // After the first level the caller holds it: the others are counts, and cannot fail.
  for (unsigned i = 1; i < levels; ++i) lock();
}

// A waiter registers before it releases the lock, so a notify made under the lock counts it; it
// reads the sequence before it looks for a wake-up, so a wake-up granted after it looked bumps
// the sequence it sleeps on and no wake-up is lost.
bool Condition::wait_by(detail::Clock::time_point deadline) {
  detail::ConditionState& state = *state_;
  std::uint32_t sequence = state.sequence.load(std::memory_order_acquire);
  state.waiters_and_wakeups.fetch_add(kOneWaiter, std::memory_order_seq_cst);
  unsigned levels = 0;
  try {
    levels = release_whole();
  } catch (...) {  // the caller does not hold the lock
    take_wakeup_or_leave(state.waiters_and_wakeups);
    throw;
  }
  bool notified = false;
  {
    std::optional<detail::TrackedWait> tracked;
    if (detail::tracking_on()) {
      tracked.emplace(detail::WaitKind::condition, state.key, name(), deadline != detail::Clock::time_point::max());
    }
    for (;;) {
      const bool woke = detail::block_until(
          [&] { return state.sequence.load(std::memory_order_acquire) != sequence; },
          [&](detail::Clock::time_point until) { detail::futex_wait(state.sequence, sequence, until); }, deadline);
      if (!woke) {
        notified = take_wakeup_or_leave(state.waiters_and_wakeups);
        break;
      }
      sequence = state.sequence.load(std::memory_order_acquire);
      if (take_wakeup(state.waiters_and_wakeups)) {
        notified = true;
        break;
      }
    }
  }
  take_back(levels);
  return notified;
}

void Condition::grant_wakeups(std::uint32_t most) {
  if (detail::tracking_on()) detail::note_releaser(detail::WaitKind::condition, state_->key);
  std::atomic<std::uint64_t>& word = state_->waiters_and_wakeups;
  std::uint64_t seen = word.load(std::memory_order_acquire);
  std::uint32_t granted = 0;
  for (;;) {
    const std::uint32_t waiters = waiters_in(seen), wakeups = wakeups_in(seen);
    // Garbage in the word (wake-ups above waiters) grants nothing rather than wrapping.
    granted = wakeups < waiters ? std::min(most, waiters - wakeups) : 0;
    if (granted == 0) return;
    if (word.compare_exchange_weak(seen, seen + granted, std::memory_order_acq_rel)) break;
  }
  state_->sequence.fetch_add(1, std::memory_order_seq_cst);
  detail::futex_wake(state_->sequence, static_cast<int>(std::min<std::uint32_t>(granted, 0x7fffffff)));
}

void Condition::notify(int n) {
  if (n < 0) throw Error("Condition::notify: n is " + std::to_string(n) + "; it must be 0 or more");
  if (n > 0) grant_wakeups(static_cast<std::uint32_t>(n));
}

void Condition::notify_all() { grant_wakeups(UINT32_MAX); }

}  // namespace tandem
