// Semaphore and BoundedSemaphore: counting semaphores for threads and processes alike (Python's
// threading and multiprocessing semaphores in one type each).
//
//   tandem::BoundedSemaphore gpus(2);               // at most two holders at a time
//   pool.submit([](tandem::BoundedSemaphore g) { std::lock_guard hold(g); train(); }, gpus);
//
// Semaphore counts signals: any agent may release, any may acquire, and nobody owns a unit.
// BoundedSemaphore guards a resource: release past the initial value is a tandem::Error, and
// the units a process holds are recorded, so that when it dies holding them (SIGKILL included)
// they are given back: the acquirer that receives such a unit gets tandem::OwnerDied, holding
// it, and releases it once the resource is repaired (a std::lock_guard whose constructor throws
// OwnerDied does not release it: catch around the guard). A thread that ends holding a unit is
// not noticed: its process still lives.
//
// Both are lockable (lock = acquire, unlock = release) for std::lock_guard, every blocking call
// has a timeout form, and both are handles passed to other agents like a Lock.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "tandem/detail/traveller.hpp"
#include "tandem/detail/deadline.hpp"
#include "tandem/detail/futex.hpp"
#include "tandem/detail/process_identity.hpp"
#include "tandem/detail/robust_mutex.hpp"
#include "tandem/detail/shared_state.hpp"

namespace tandem {

namespace detail {
struct SemaphoreState {
  static constexpr std::uint32_t kTag = 0x53454d41;  // "SEMA"
  static constexpr int kHolderSlots = 64;

  SemaphoreState(std::uint32_t initial, bool is_bounded)
      : count(initial), bound(initial), bounded(is_bounded), holders_mutex(RobustMutex::Kind::plain) {}

  std::atomic<std::uint32_t> count;
  std::atomic<std::uint32_t> waiters{0};
  const std::uint32_t bound;
  const bool bounded;
  // BoundedSemaphore only: who holds how many units, and units given back from dead holders
  // that the next acquirers are to be told about.
  RobustMutex holders_mutex;
  struct Holder {
    ProcessIdentity process;
    std::uint32_t units;
  } holders[kHolderSlots] = {};
  std::atomic<std::uint32_t> reclaimed_unreported{0};
  std::atomic<std::int64_t> last_liveness_check{0};  // steady-clock nanoseconds
};

}  // namespace detail

// Semaphore (kBounded false) and BoundedSemaphore (true): one class, two kinds, as Lock and RLock.
template <bool kBounded>
class BasicSemaphore {
 public:
  explicit BasicSemaphore(std::uint32_t value = 1)
      : state_(detail::SharedState<detail::SemaphoreState>::create(0, value, kBounded)) {}

  void acquire() { acquire_by(detail::Clock::time_point::max()); }
  // False when no unit came free: at once, within `timeout`, or by `deadline`.
  bool try_acquire() { return acquire_by(detail::Clock::time_point::min()); }
  template <class Rep, class Period>
  bool try_acquire_for(std::chrono::duration<Rep, Period> timeout) {
    return acquire_by(detail::deadline_after(timeout));
  }
  template <class Clock, class Duration>
  bool try_acquire_until(std::chrono::time_point<Clock, Duration> deadline) {
    return acquire_by(detail::deadline_at(deadline));
  }
  // A BoundedSemaphore throws tandem::Error past its initial value.
  void release(std::uint32_t n = 1);
  // A snapshot of the count.
  std::uint32_t value() const noexcept { return state_->count.load(std::memory_order_relaxed); }

  void lock() { acquire(); }
  bool try_lock() { return try_acquire(); }
  void unlock() { release(); }

 private:
  friend struct detail::HandleAccess;
  using SharedStateType = detail::SharedState<detail::SemaphoreState>;
  explicit BasicSemaphore(SharedStateType state) : state_(std::move(state)) {}
  static void check_handle(const SharedStateType& state) {
    if (state->bounded != kBounded) detail::throw_malformed("a Semaphore handle names a BoundedSemaphore, or the reverse");
  }
  bool acquire_by(detail::Clock::time_point deadline);
  bool try_take() noexcept;
  void record_holding(int delta);
  // Gives back the units of dead holders, at most once per check interval across all agents.
  std::uint32_t reclaim_from_dead_holders();

  SharedStateType state_;
};

using Semaphore = BasicSemaphore<false>;
using BoundedSemaphore = BasicSemaphore<true>;
// Defined in semaphore.cpp for the two kinds.
extern template class BasicSemaphore<false>;
extern template class BasicSemaphore<true>;

}  // namespace tandem
