// Condition: a condition variable for threads and processes alike, bound to a tandem::Lock
// (Python's threading.Condition and multiprocessing.Condition in one type).
//
//   tandem::Condition ready;                       // with a Lock of its own
//   { tandem::LockGuard guard(ready); while (!done(state)) ready.wait(); }
//   { tandem::LockGuard guard(ready); finish(state); ready.notify_all(); }
//
// A Condition is itself lockable (lock, unlock, try_lock, try_lock_for: its Lock's). wait
// releases the lock, sleeps until notified, and takes the lock again; like std::condition_variable
// it may wake spuriously, so wait in a loop or pass a predicate. When the lock's holder died,
// taking it again throws tandem::OwnerDied (see lock.hpp), with the lock held.
//
// A Condition is a handle: copies are the same condition, passed to other agents like a Lock.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

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
  std::atomic<std::uint32_t> sequence{0};            // bumped by every notify
  std::atomic<std::uint32_t> waiters{0};
  std::uint64_t key = new_object_key();  // names the condition in the diagnostics
};
}  // namespace detail

class TANDEM_CAPABILITY("mutex") Condition {
 public:
  Condition() : Condition(Lock()) {}
  // Shares `lock` with its other users.
  explicit Condition(Lock lock)
      : lock_(std::move(lock)), state_(detail::SharedState<detail::ConditionState>::create(0)) {}

  void lock() TANDEM_ACQUIRE() { lock_.lock(); }
  bool try_lock() TANDEM_TRY_ACQUIRE(true) { return lock_.try_lock(); }
  template <class Rep, class Period>
  bool try_lock_for(std::chrono::duration<Rep, Period> timeout) TANDEM_TRY_ACQUIRE(true) {
    return lock_.try_lock_for(timeout);
  }
  template <class Clock, class Duration>
  bool try_lock_until(std::chrono::time_point<Clock, Duration> deadline) TANDEM_TRY_ACQUIRE(true) {
    return lock_.try_lock_until(deadline);
  }
  void unlock() TANDEM_RELEASE() { lock_.unlock(); }
  Lock& get_lock() noexcept { return lock_; }

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

  // Wakes at least n waiters, if any (in fact all of them: see condition.cpp). The lock need not
  // be held.
  void notify(int n = 1);
  void notify_all();

 private:
  friend struct detail::Traveller<Condition>;
  Condition(Lock lock, detail::SharedState<detail::ConditionState> state)
      : lock_(std::move(lock)), state_(std::move(state)) {}
  bool wait_by(detail::Clock::time_point deadline) TANDEM_REQUIRES(this);
  template <class Predicate>
  bool wait_by(detail::Clock::time_point deadline, Predicate& predicate) TANDEM_REQUIRES(this) {
    while (!predicate()) {
      if (!wait_by(deadline)) return predicate();
    }
    return true;
  }

  Lock lock_;
  detail::SharedState<detail::ConditionState> state_;
};

namespace detail {
template <>
struct Traveller<Condition> {
  static void encode(ByteWriter& out, const Condition& condition) {
    Traveller<Lock>::encode(out, condition.lock_);
    condition.state_.encode(out);
  }
  static Condition decode(ByteReader& in) {
    Lock lock = Traveller<Lock>::decode(in);
    return Condition(std::move(lock), SharedState<ConditionState>::decode(in));
  }
};
}  // namespace detail

}  // namespace tandem
