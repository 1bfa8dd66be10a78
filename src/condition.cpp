#include "tandem/condition.hpp"

#include <optional>

#include "tandem/detail/wait.hpp"

namespace tandem {

// The sequence is read before the lock is released: a notify that follows the release changes
// it, so the futex wait returns at once and no wake-up is lost.
bool Condition::wait_by(detail::Clock::time_point deadline) {
  detail::ConditionState& state = *state_;
  const std::uint32_t sequence = state.sequence.load(std::memory_order_acquire);
  state.waiters.fetch_add(1, std::memory_order_seq_cst);
  lock_.unlock();
  std::optional<detail::TrackedWait> tracked;
  if (detail::tracking_on()) {
    tracked.emplace(detail::WaitKind::condition, state.key, lock_.name(), deadline != detail::Clock::time_point::max());
  }
  const bool notified = detail::block_until(
      [&] { return state.sequence.load(std::memory_order_acquire) != sequence; },
      [&](detail::Clock::time_point until) { detail::futex_wait(state.sequence, sequence, until); }, deadline);
  state.waiters.fetch_sub(1, std::memory_order_relaxed);
  lock_.lock();
  return notified;
}

// Every waiter is woken, whatever n: a notifier need not hold the lock (std::condition_variable
// allows that too), and then a waiter that arrives between the bump and the wake-up could take
// a wake-up meant for an earlier one. The extra wake-ups are spurious ones, which waiters allow.
void Condition::notify(int) { notify_all(); }

void Condition::notify_all() {
  if (detail::tracking_on()) detail::note_releaser(detail::WaitKind::condition, state_->key);
  state_->sequence.fetch_add(1, std::memory_order_seq_cst);
  if (state_->waiters.load(std::memory_order_seq_cst) != 0) detail::futex_wake_all(state_->sequence);
}

}  // namespace tandem
