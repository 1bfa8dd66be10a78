// A mutex in shared memory that survives its holder: POSIX's robust, process-shared mutex. When
// the holding thread or process dies (SIGKILL included), the kernel releases it and the next
// locker learns so (EOWNERDEAD), which tandem reports as OwnerDied.
#pragma once

#include <pthread.h>
#include <sys/types.h>

#include <chrono>

namespace tandem::detail {

class RobustMutex {
 public:
  enum class Kind { plain, recursive };

  explicit RobustMutex(Kind kind);
  RobustMutex(const RobustMutex&) = delete;
  RobustMutex& operator=(const RobustMutex&) = delete;

  // OwnerDied (held by the caller then), LockUnrecoverable, or tandem::Error when a plain mutex
  // is locked again by its holder (its try_lock and try_lock_until return false instead).
  void lock() {
    if (const int result = ::pthread_mutex_lock(&mutex_); result != 0) [[unlikely]]
      on_lock_result(result);
  }
  bool try_lock() {
    const int result = ::pthread_mutex_trylock(&mutex_);
    if (result == 0) [[likely]]
      return true;
    return on_try_result(result);
  }
  bool try_lock_until(std::chrono::steady_clock::time_point deadline);
  // tandem::Error if the caller does not hold it.
  void unlock() {
    if (const int result = ::pthread_mutex_unlock(&mutex_); result != 0) [[unlikely]]
      on_unlock_result(result);
  }
  void mark_consistent();
  // The thread id of the holder (0 when free; the kernel's view, racy by nature), and how many
  // times it holds a recursive mutex.
  pid_t holder() const noexcept;
  unsigned hold_count() const noexcept;
  // Whether the calling thread holds it: exact, since only this thread changes that.
  bool held_by_caller() const noexcept;

 private:
  [[noreturn]] void on_lock_result(int result);
  bool on_try_result(int result);  // false when busy
  [[noreturn]] static void on_unlock_result(int result);

  pthread_mutex_t mutex_;
};

// Holds a RobustMutex over tandem's own bookkeeping, which is consistent at every step: a holder
// that died left nothing to repair, so its death is acknowledged and forgotten. With a deadline,
// it may give up (held() is false then): for bookkeeping in memory another process could have
// scribbled over, where a garbage mutex must not block a bounded call for ever.
class BookkeepingGuard {
 public:
  explicit BookkeepingGuard(RobustMutex& mutex, std::chrono::steady_clock::time_point deadline =
                                                    std::chrono::steady_clock::time_point::max());
  BookkeepingGuard(const BookkeepingGuard&) = delete;
  BookkeepingGuard& operator=(const BookkeepingGuard&) = delete;
  ~BookkeepingGuard() {
    if (held_) mutex_.unlock();
  }
  bool held() const noexcept { return held_; }

 private:
  RobustMutex& mutex_;
  bool held_ = false;
};

}  // namespace tandem::detail
