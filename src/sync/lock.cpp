#include "tandem/lock.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "tandem/error.hpp"

namespace tandem::detail {

void abandon_held_lock(LockState& state, const SharedMemory& memory) noexcept {
  const pid_t holder = state.mutex.holder();
  const std::string name = state.name.view().empty() ? std::string("(unnamed)") : std::string(state.name.view());
  if (holder == ::gettid()) {
    std::fprintf(stderr,
                 "tandem: Lock '%s' was destroyed while this thread held it; it was released (unlock a lock "
                 "before its last handle goes)\n",
                 name.c_str());
    for (unsigned held = std::max(1u, state.mutex.hold_count()); held > 0; --held) {
      try {
        state.mutex.unlock();
      } catch (const Error&) {
        break;
      }
    }
    if (tracking_on()) lock_released(state.key);
    return;
  }
  if (::access(("/proc/self/task/" + std::to_string(holder)).c_str(), F_OK) != 0) return;  // another process's
  std::fprintf(stderr,
               "tandem: Lock '%s' was destroyed while another thread of this process (%d) held it; its memory stays "
               "mapped until the process ends\n",
               name.c_str(), static_cast<int>(holder));
  // Built in place and never destroyed: not even at exit may the memory go while threads run.
  static std::mutex mutex;
  alignas(std::vector<SharedMemory>) static unsigned char storage[sizeof(std::vector<SharedMemory>)];
  static auto* const kept = ::new (storage) std::vector<SharedMemory>();
  std::lock_guard lock(mutex);
  kept->push_back(memory);
}


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
