// Condition: a condition variable for threads and processes alike, bound to a tandem::Lock or
// RLock (Python's threading.Condition and multiprocessing.Condition in one type).
//
//   tandem::Condition ready;                       // with a Lock of its own
//   { tandem::LockGuard guard(ready); while (!done(state)) ready.wait(); }
//   { tandem::LockGuard guard(ready); finish(state); ready.notify_all(); }
//
// A Condition is itself lockable (lock, unlock, try_lock, try_lock_for: its lock's). wait
// releases the lock, sleeps until notified, and takes the lock again; over an RLock it releases
// every level the caller holds and takes them all back, as Python's does. A waiter may wake
// without a notify when a waiter died before taking the wake-up meant for it, so wait in a loop
// or pass a predicate. When the lock's holder died, taking it again throws tandem::OwnerDied
// (see lock.hpp), with the lock held (once, over an RLock).
//
// A Condition is a handle: copies are the same condition, passed to other agents like a Lock.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <variant>

#include "tandem/detail/traveller.hpp"
#include "tandem/detail/deadline.hpp"
#include "tandem/detail/futex.hpp"
#include "tandem/detail/shared_state.hpp"
#include "tandem/lock.hpp"
#include "tandem/thread_annotations.hpp"

namespace tandem {

namespace detail {
struct ConditionState {
  static constexpr std::uint32_t kTag = 0x434f4e44;  // "COND"
  std::atomic<std::uint32_t> sequence{0};            // bumped by every notify that wakes someone
  // Waiters registered (high half) and wake-ups granted to them and not yet taken (low half),
  // in one word so that a notify grants no more than there are waiters to take them.
  std::atomic<std::uint64_t> waiters_and_wakeups{0};
  std::uint64_t key = new_object_key();  // names the condition in the diagnostics
};
}  // namespace detail

class TANDEM_CAPABILITY("mutex") Condition {
 public:
  Condition() : Condition(Lock()) {}
  // Shares `lock` with its other users.
  explicit Condition(Lock lock)
      : lock_(std::move(lock)), state_(detail::SharedState<detail::ConditionState>::create(0)) {}
  explicit Condition(RLock lock)
      : lock_(std::move(lock)), state_(detail::SharedState<detail::ConditionState>::create(0)) {}

  void lock() TANDEM_ACQUIRE() {
    std::visit([](auto& held) { held.lock(); }, lock_);
  }
  bool try_lock() TANDEM_TRY_ACQUIRE(true) {
    return std::visit([](auto& held) { return held.try_lock(); }, lock_);
  }
  template <class Rep, class Period>
  bool try_lock_for(std::chrono::duration<Rep, Period> timeout) TANDEM_TRY_ACQUIRE(true) {
    return try_lock_until(detail::deadline_after(timeout));
  }
  template <class Clock, class Duration>
  bool try_lock_until(std::chrono::time_point<Clock, Duration> deadline) TANDEM_TRY_ACQUIRE(true) {
    return std::visit([deadline](auto& held) { return held.try_lock_until(deadline); }, lock_);
  }
  void unlock() TANDEM_RELEASE() {
    std::visit([](auto& held) { held.unlock(); }, lock_);
  }
  // After OwnerDied, by its holder: the state the lock protects is whole again (see lock.hpp).
  void mark_consistent() {
    std::visit([](auto& held) { held.mark_consistent(); }, lock_);
  }
  // Whether some agent holds the lock now: a snapshot, stale as it returns.
  bool locked() const noexcept {
    return std::visit([](const auto& held) { return held.locked(); }, lock_);
  }

  // With the lock held: releases it, waits for a notify, takes it again.
  void wait() TANDEM_REQUIRES(this) { wait_by(detail::Clock::time_point::max()); }
  // False if `timeout` passed (`deadline` came) without a notify; the lock is held again either
  // way.
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> timeout) TANDEM_REQUIRES(this) {
    return wait_by(detail::deadline_after(timeout));
  }
  template <class Clock, class Duration>
  bool wait_until(std::chrono::time_point<Clock, Duration> deadline) TANDEM_REQUIRES(this) {
    return wait_by(detail::deadline_at(deadline));
  }
  // Waits until `predicate()` holds. The timed forms return the predicate's last value.
  template <class Predicate>
  void wait(Predicate predicate) TANDEM_REQUIRES(this) {
    while (!predicate()) wait();
  }
  template <class Rep, class Period, class Predicate>
  bool wait_for(std::chrono::duration<Rep, Period> timeout, Predicate predicate) TANDEM_REQUIRES(this) {
    return wait_by(detail::deadline_after(timeout), predicate);
  }
  template <class Clock, class Duration, class Predicate>
  bool wait_until(std::chrono::time_point<Clock, Duration> deadline, Predicate predicate) TANDEM_REQUIRES(this) {
    return wait_by(detail::deadline_at(deadline), predicate);
  }

  // Wakes n of the waiters (all of them if fewer), as Python's notify(n): not always the longest
  // waiting. With the lock held, the waiters are those that called wait before; without it, a
  // waiter arriving meanwhile may count. n = 0 wakes none; a negative n is a tandem::Error.
  void notify(int n = 1);
  void notify_all();

 private:
  friend struct detail::Traveller<Condition>;
  using AnyLock = std::variant<Lock, RLock>;
  Condition(AnyLock lock, detail::SharedState<detail::ConditionState> state)
      : lock_(std::move(lock)), state_(std::move(state)) {}
  bool wait_by(detail::Clock::time_point deadline) TANDEM_REQUIRES(this);
  // Releases the lock whole (every level of an RLock) and returns how to take it back.
  unsigned release_whole() TANDEM_RELEASE();
  void take_back(unsigned levels) TANDEM_ACQUIRE();
  void grant_wakeups(std::uint32_t most);
  std::string name() const {
    return std::visit([](const auto& held) { return held.name(); }, lock_);
  }
  template <class Predicate>
  bool wait_by(detail::Clock::time_point deadline, Predicate& predicate) TANDEM_REQUIRES(this) {
    while (!predicate()) {
      if (!wait_by(deadline)) return predicate();
    }
    return true;
  }

  AnyLock lock_;
  detail::SharedState<detail::ConditionState> state_;
};

namespace detail {
template <>
struct Traveller<Condition> {
  static void encode(ByteWriter& out, const Condition& condition) {
    out.write_raw(static_cast<std::uint8_t>(condition.lock_.index()));
    std::visit([&out](const auto& lock) { Traveller<std::decay_t<decltype(lock)>>::encode(out, lock); }, condition.lock_);
    condition.state_.encode(out);
  }
  static Condition decode(ByteReader& in) {
    const auto kind = in.read_raw<std::uint8_t>();
    if (kind > 1) throw_malformed("a Condition handle whose lock is neither a Lock nor an RLock");
    Condition::AnyLock lock = kind == 0 ? Condition::AnyLock(Traveller<Lock>::decode(in))
                                        : Condition::AnyLock(Traveller<RLock>::decode(in));
    return Condition(std::move(lock), SharedState<ConditionState>::decode(in));
  }
};
}  // namespace detail

}  // namespace tandem
