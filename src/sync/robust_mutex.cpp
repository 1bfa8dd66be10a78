#include "tandem/detail/robust_mutex.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <string>

#include "tandem/error.hpp"

#include <algorithm>
#include <atomic>
#include <thread>

namespace tandem::detail {
namespace {

// What glibc's __owner holds once a dead holder's lock is taken over but not yet repaired.
constexpr int kInconsistentOwner = 0x7fffffff;

[[noreturn]] void fail(const char* what, int result) {
  throw Error(std::string("lock: ") + what + ": " + std::strerror(result));
}

}  // namespace

RobustMutex::RobustMutex(Kind kind) {
  pthread_mutexattr_t attributes;
  ::pthread_mutexattr_init(&attributes);
  ::pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED);
  ::pthread_mutexattr_setrobust(&attributes, PTHREAD_MUTEX_ROBUST);
  // Error-checking: a thread that locks a plain Lock it holds gets an error, not a hang.
  ::pthread_mutexattr_settype(&attributes,
                              kind == Kind::recursive ? PTHREAD_MUTEX_RECURSIVE : PTHREAD_MUTEX_ERRORCHECK);
  const int result = ::pthread_mutex_init(&mutex_, &attributes);
  ::pthread_mutexattr_destroy(&attributes);
  if (result != 0) fail("init", result);
}

bool RobustMutex::try_lock_until(std::chrono::steady_clock::time_point deadline) {
  int result;
#if defined(__SANITIZE_THREAD__)
  // ThreadSanitizer does not intercept pthread_mutex_clocklock (it would miss the acquisition and
  // the repair of a dead owner's lock): its build polls with the calls it knows.
  for (auto pause = std::chrono::microseconds(50);; pause = std::min(pause * 2, std::chrono::microseconds(2000))) {
    result = ::pthread_mutex_trylock(&mutex_);
    const auto now = std::chrono::steady_clock::now();
    if (result != EBUSY) break;
    if (now >= deadline) return false;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(pause, deadline - now));
  }
#else
  // A deadline before the clock's epoch (time_point::min(), a saturated past) would make a
  // negative timespec, which the call refuses (EINVAL); the epoch is just as past.
  const auto since_epoch = std::max(deadline, std::chrono::steady_clock::time_point{}).time_since_epoch();
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  const timespec until{static_cast<time_t>(seconds.count()),
                       static_cast<long>(std::chrono::nanoseconds(since_epoch - seconds).count())};
  while ((result = ::pthread_mutex_clocklock(&mutex_, CLOCK_MONOTONIC, &until)) == EINTR) {
  }
#endif
  if (result == 0) return true;
  if (result == ETIMEDOUT || result == EDEADLK) return false;  // EDEADLK: see on_try_result
  on_lock_result(result);
}

void RobustMutex::on_lock_result(int result) {
  switch (result) {
    case EOWNERDEAD:
      throw OwnerDied(
          "lock: its previous holder died holding it; the caller holds it now: repair the protected state, "
          "call mark_consistent(), then unlock");
    case ENOTRECOVERABLE:
      throw LockUnrecoverable(
          "lock: a holder died and the next one unlocked it without mark_consistent(); it cannot be taken again");
    case EDEADLK:
      throw Error("lock: this thread holds it already (a Lock is not reentrant: use an RLock)");
    default:
      fail("lock", result);
  }
}

bool RobustMutex::on_try_result(int result) {
  // EDEADLK: the calling thread holds this plain mutex already. A try answers "not taken", as
  // Python's acquire(blocking=False) does; only lock(), which would wait for ever, throws.
  if (result == EBUSY || result == EDEADLK) return false;
  on_lock_result(result);
}

void RobustMutex::on_unlock_result(int result) {
  if (result == EPERM) throw Error("unlock: the calling thread does not hold this lock");
  fail("unlock", result);
}

void RobustMutex::mark_consistent() {
  if (const int result = ::pthread_mutex_consistent(&mutex_); result != 0) {
    throw Error(std::string("mark_consistent: only the holder that was told OwnerDied can call it (") +
                std::strerror(result) + ")");
  }
}

pid_t RobustMutex::holder() const noexcept {
  // glibc keeps the holder's thread id in __owner (the robust-futex word holds it too).
  const int owner = std::atomic_ref<int>(const_cast<int&>(mutex_.__data.__owner)).load(std::memory_order_relaxed);
  return owner > 0 && owner != kInconsistentOwner ? owner : 0;
}

bool RobustMutex::held_by_caller() const noexcept { return holder() == ::gettid(); }

unsigned RobustMutex::hold_count() const noexcept {
  return std::atomic_ref<unsigned>(const_cast<unsigned&>(mutex_.__data.__count)).load(std::memory_order_relaxed);
}

BookkeepingGuard::BookkeepingGuard(RobustMutex& mutex, std::chrono::steady_clock::time_point deadline)
    : mutex_(mutex) {
  try {
    if (deadline == std::chrono::steady_clock::time_point::max()) {
      mutex_.lock();
      held_ = true;
    } else {
      held_ = mutex_.try_lock_until(deadline);
    }
  } catch (const OwnerDied&) {
    mutex_.mark_consistent();
    held_ = true;
  }
}

}  // namespace tandem::detail
