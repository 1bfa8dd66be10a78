// Lock and RLock: one mutual-exclusion lock for threads and processes alike (Python's
// threading.Lock and multiprocessing.Lock in one type), that reports a holder's death instead of
// hanging. RLock may be taken again by the thread that holds it.
//
//   tandem::Lock lock;
//   tandem::Process p([](tandem::Lock l) { tandem::LockGuard guard(l); ... }, lock);
//
// A Lock is a handle: copies are the same lock, which is how it reaches other agents, as an
// argument or by inheritance (any start method, pool tasks included). It lives in shared memory
// (see shared_memory.hpp), so making one costs a few system calls and one descriptor.
//
// Locking and unlocking follow std::mutex (it is a Lockable: std::unique_lock, std::scoped_lock
// work), with the thread that locked it as its owner. When the holder dies (a thread that ends,
// a process that crashes or is killed) the next locker gets tandem::OwnerDied while holding the
// lock, so it can repair what the lock protects:
//
//   try { lock.lock(); } catch (const tandem::OwnerDied&) { repair(); lock.mark_consistent(); }
//   ... lock.unlock();
//
// A guard (LockGuard, std::lock_guard, std::unique_lock) whose constructor throws OwnerDied
// does not exist to release the lock: catch OwnerDied around it, repair, mark_consistent(), and
// unlock() yourself.
//
// Every blocking call has a timeout form (try_lock_for, try_lock_until). Locking a Lock one
// already holds is a tandem::Error, not a deadlock; unlocking one not held, too.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "tandem/detail/traveller.hpp"
#include "tandem/detail/deadline.hpp"
#include "tandem/detail/futex.hpp"
#include "tandem/detail/robust_mutex.hpp"
#include "tandem/detail/shared_state.hpp"
#include "tandem/detail/tracking.hpp"
#include "tandem/thread_annotations.hpp"

namespace tandem {

namespace detail {
struct LockState {
  static constexpr std::uint32_t kTag = 0x4c4f434b;  // "LOCK"
  LockState(RobustMutex::Kind lock_kind, std::string_view lock_name)
      : kind(lock_kind), mutex(lock_kind), key(new_object_key()), name(lock_name) {}
  LockLabel label() const noexcept { return {key, name.view()}; }
  RobustMutex::Kind kind;
  RobustMutex mutex;
  std::uint64_t key;  // names the lock in the diagnostics
  ObjectName name;
};

// The last handle of a lock in this process is going while a thread of this process holds it: a
// misuse, reported on stderr. Held by the caller, it is released; held by another thread, its
// memory stays mapped for the life of the process (that thread's robust-mutex list runs through
// it, and its next lock of any kind would follow the list into unmapped memory).
void abandon_held_lock(LockState& state, const SharedMemory& memory) noexcept;

// The acquisitions of a lock while the diagnostics are on: recorded, order-checked, and marked
// as a wait when they block.
void tracked_lock(LockState& state);
bool tracked_try_lock_until(LockState& state, Clock::time_point deadline);

template <RobustMutex::Kind kKind>
struct LockMaker;
}  // namespace detail

template <detail::RobustMutex::Kind kKind>
class TANDEM_CAPABILITY("mutex") BasicLock {
 public:
  BasicLock() : BasicLock(std::string_view()) {}
  // A lock the diagnostics' reports call by `name` (up to 47 characters are kept).
  explicit BasicLock(std::string_view name)
      : state_(detail::SharedState<detail::LockState>::create(0, kKind, name)) {}
  BasicLock(const BasicLock&) = default;
  BasicLock(BasicLock&&) noexcept = default;
  BasicLock& operator=(const BasicLock&) = default;
  BasicLock& operator=(BasicLock&&) noexcept = default;
  // Destroying the last handle of a held lock is a misuse: the lock is released (and it is said
  // on stderr) rather than left to corrupt the holder's later locking.
  ~BasicLock() {
    if (detail::SegmentAccess::last_handle_here(state_.memory()) && state_->mutex.holder() != 0) [[unlikely]]
      detail::abandon_held_lock(*state_, state_.memory());
  }

  void lock() TANDEM_ACQUIRE() {
    if (detail::tracking_on()) [[unlikely]] {
      detail::tracked_lock(*state_);
      return;
    }
    state_->mutex.lock();
  }
  // Without waiting; false if another thread holds it.
  bool try_lock() TANDEM_TRY_ACQUIRE(true) {
    const bool locked = state_->mutex.try_lock();
    if (locked && detail::tracking_on()) [[unlikely]]
      detail::lock_acquired(state_->label());
    return locked;
  }
  template <class Rep, class Period>
  bool try_lock_for(std::chrono::duration<Rep, Period> timeout) TANDEM_TRY_ACQUIRE(true) {
    return try_lock_by(detail::deadline_after(timeout));
  }
  template <class Clock, class Duration>
  bool try_lock_until(std::chrono::time_point<Clock, Duration> deadline) TANDEM_TRY_ACQUIRE(true) {
    return try_lock_by(detail::deadline_at(deadline));
  }
  void unlock() TANDEM_RELEASE() {
    state_->mutex.unlock();
    if (detail::tracking_on()) [[unlikely]]
      detail::lock_released(state_->key);
  }
  // After OwnerDied, by its holder: the protected state is whole again and the lock usable.
  void mark_consistent() { state_->mutex.mark_consistent(); }
  // Whether some agent holds it now (Python's Lock.locked()): a snapshot, stale as it returns.
  bool locked() const noexcept { return state_->mutex.holder() != 0; }
  std::string name() const { return std::string(state_->name.view()); }

 private:
  friend struct detail::HandleAccess;
  friend class Condition;  // waits with every level of an RLock released
  template <detail::RobustMutex::Kind>
  friend struct detail::LockMaker;
  using SharedStateType = detail::SharedState<detail::LockState>;
  explicit BasicLock(SharedStateType state) : state_(std::move(state)) {}
  static void check_handle(const SharedStateType& state) {
    if (state->kind != kKind) detail::throw_malformed("a Lock handle names an RLock, or the reverse");
  }
  bool try_lock_by(detail::Clock::time_point deadline) TANDEM_TRY_ACQUIRE(true) {
    if (detail::tracking_on()) [[unlikely]]
      return detail::tracked_try_lock_until(*state_, deadline);
    return state_->mutex.try_lock_until(deadline);
  }

  unsigned hold_count() const noexcept { return state_->mutex.hold_count(); }
  bool held_by_caller() const noexcept { return state_->mutex.held_by_caller(); }

  SharedStateType state_;
};

using Lock = BasicLock<detail::RobustMutex::Kind::plain>;
using RLock = BasicLock<detail::RobustMutex::Kind::recursive>;

// Holds a lock for a scope, visible to clang's thread-safety analysis (std::lock_guard is not
// annotated in libstdc++).
template <class L>
class TANDEM_SCOPED_CAPABILITY LockGuard {
 public:
  explicit LockGuard(L& lock) TANDEM_ACQUIRE(lock) : lock_(lock) { lock_.lock(); }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;
  ~LockGuard() TANDEM_RELEASE() { lock_.unlock(); }

 private:
  L& lock_;
};

namespace detail {
// The lock that lives inside another shared object (a Value's, an Array's).
template <RobustMutex::Kind kKind>
struct LockMaker {
  static BasicLock<kKind> from(SharedState<LockState> state) {
    BasicLock<kKind>::check_handle(state);
    return BasicLock<kKind>(std::move(state));
  }
};
}  // namespace detail

}  // namespace tandem
