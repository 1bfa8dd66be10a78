// Value<T>: one trivially copyable T in shared memory with the RLock that guards it, Python's
// multiprocessing.Value. Each load and store takes the lock; a compound update holds it around
// both (it is an RLock, so load and store may take it again inside):
//
//   tandem::Value<long> hits(0);
//   pool.submit([](tandem::Value<long> h) { h.with_lock([](long& n) { ++n; }); }, hits);
//   { tandem::LockGuard guard(hits.get_lock()); hits.store(hits.load() * 2); }
//
// A Value is a handle: copies are the same value, and it travels to other agents as a Lock
// does. For data reachable only under its lock, prefer Synchronized<T>.
#pragma once

#include <mutex>
#include <type_traits>
#include <utility>

#include "tandem/detail/holds_address.hpp"
#include "tandem/detail/traveller.hpp"
#include "tandem/detail/shared_state.hpp"
#include "tandem/lock.hpp"
#include "tandem/synchronized.hpp"

namespace tandem {

template <class T>
class Value {
  static_assert(std::is_trivially_copyable_v<T> && !detail::kHoldsAddress<T>,
                "tandem::Value<T> holds T in shared memory: T must be trivially copyable and hold no pointer, reference or view");
  using State = detail::GuardedState<T, detail::RobustMutex::Kind::recursive>;

 public:
  explicit Value(T initial = T{}) : Value(detail::SharedState<State>::create(0, initial)) {}

  T load() {
    LockGuard guard(lock_);
    return state_->value;
  }
  void store(T value) {
    LockGuard guard(lock_);
    state_->value = value;
  }
  // f(T&) under the lock; returns what f returns.
  template <class F>
  decltype(auto) with_lock(F&& f) {
    LockGuard guard(lock_);
    return std::forward<F>(f)(state_->value);
  }
  RLock& get_lock() noexcept { return lock_; }
  // After a call here threw OwnerDied in this thread (which then holds the lock): repair(T&)
  // runs under it, marked consistent, and the lock is released (also if repair throws).
  template <class F>
  void recover(F&& repair) {
    lock_.mark_consistent();
    std::unique_lock<RLock> held(lock_, std::adopt_lock);  // the hold OwnerDied left, released at the end
    std::forward<F>(repair)(state_->value);
  }

 private:
  friend struct detail::HandleAccess;
  using SharedStateType = detail::SharedState<State>;
  static void check_handle(const SharedStateType& state) {
    if (state->value_size != sizeof(T)) detail::throw_malformed("a Value<T> handle names a value of another size");
  }
  explicit Value(SharedStateType state)
      : state_(std::move(state)),
        lock_(detail::LockMaker<detail::RobustMutex::Kind::recursive>::from(state_.inner(&State::lock))) {}

  detail::SharedState<State> state_;
  RLock lock_;
};

}  // namespace tandem
