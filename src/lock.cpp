#include "tandem/lock.hpp"

#include "tandem/error.hpp"

namespace tandem::detail {

// A holder that died leaves the caller holding the lock (OwnerDied): it is recorded as held all
// the same, so the unlock that follows the repair finds it.
void tracked_lock(LockState& state) {
  check_lock_order(state.label());
  if (!state.mutex.try_lock()) {
    try {
      TrackedWait wait(WaitKind::lock, state.key, state.name.view(), false);
      state.mutex.lock();
    } catch (const OwnerDied&) {
      lock_acquired(state.label());
      throw;
    }
  }
  lock_acquired(state.label());
}

// A timed acquisition gives up by itself, so it is no order (taking a lock in the reverse order
// with a timeout, and backing off, is a correct way to avoid a deadlock); its wait is still
// watched for starvation.
bool tracked_try_lock_until(LockState& state, Clock::time_point deadline) {
  if (!state.mutex.try_lock()) {
    try {
      TrackedWait wait(WaitKind::lock, state.key, state.name.view(), true);
      if (!state.mutex.try_lock_until(deadline)) return false;
    } catch (const OwnerDied&) {
      lock_acquired(state.label());
      throw;
    }
  }
  lock_acquired(state.label());
  return true;
}

}  // namespace tandem::detail
