// FairLock: a mutual-exclusion lock that serves its waiters in arrival order (first come, first
// served), for threads and processes alike. Under contention a Lock goes to whoever grabs it
// first, and an agent that keeps losing that race starves; a FairLock cannot starve anyone.
//
//   tandem::FairLock printer("printer");
//   pool.submit([](tandem::FairLock l) { tandem::LockGuard guard(l); print_report(); }, printer);
//
// What fairness costs: unlock() hands the lock straight to the longest waiter, so nobody, the
// unlocker included, takes it back while that waiter wakes up. Under contention every hand-over
// thus waits for the receiver to notice (well under a microsecond while it spins, tens of
// microseconds once it sleeps) where a Lock lets a running thread go on, and a hand-over to a
// waiter in another process first reads /proc to check that the waiter still lives. Uncontended,
// the bookkeeping behind a mutex of its own costs too. On a two-core machine (lock_bench.cpp):
// lock+unlock ~60 ns against a Lock's ~27 ns; two threads taking turns, ~2.4 M pairs/s against
// a Lock's ~13 M/s.
//
// Otherwise it behaves like a Lock (see lock.hpp): a handle whose copies are the same lock, that
// reaches other agents as an argument or by inheritance; a Lockable for std::unique_lock and
// LockGuard; locking it again from the thread that holds it (try_lock included), or unlocking it
// from another, is a tandem::Error. When its holder dies (a process that crashes or is killed, a
// thread that ends) the first waiter in line takes it over within 50-100 ms and gets
// tandem::OwnerDied while holding it:
//
//   try { lock.lock(); } catch (const tandem::OwnerDied&) { repair(); lock.mark_consistent(); }
//   ... lock.unlock();
//
// Unlocked without mark_consistent(), it is tandem::LockUnrecoverable for everyone from then on.
// A waiter whose process died is skipped at hand-over.
//
// Order holds for up to 64 waiters at once: more wait for a place in the queue (which puts them
// behind everyone in it) and get one in no particular order, late-comers included.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "tandem/detail/traveller.hpp"
#include "tandem/detail/deadline.hpp"
#include "tandem/detail/futex.hpp"
#include "tandem/detail/process_identity.hpp"
#include "tandem/detail/robust_mutex.hpp"
#include "tandem/detail/shared_state.hpp"
#include "tandem/detail/tracking.hpp"
#include "tandem/thread_annotations.hpp"

namespace tandem {

namespace detail {
struct FairLockState {
  static constexpr std::uint32_t kTag = 0x46414952;  // "FAIR"
  static constexpr int kWaiterSlots = 64;
  static constexpr std::size_t kNameBytes = 48;  // a name of up to 47 bytes and its terminator

  struct Agent {
    ProcessIdentity process;  // pid 0: nobody
    std::int32_t tid = 0;
    bool operator==(const Agent&) const = default;
  };
  // One queued agent, on a cache line of its own since it spins on `signal`. A holder that was
  // handed the lock keeps its slot until it unlocks.
  struct alignas(64) Waiter {
    Agent agent;               // nobody: a free slot
    std::uint64_t ticket = 0;  // arrival order; 0 once handed the lock
    std::atomic<std::uint32_t> signal{0};  // futex word: where the hand-over stands (fair_lock.cpp)
  };

  explicit FairLockState(std::string_view lock_name);

  // Everything below is read and written under `bookkeeping`, but for the futex words.
  RobustMutex bookkeeping{RobustMutex::Kind::plain};
  Agent holder;
  int holder_slot = -1;  // the holder's slot when it was handed the lock, else -1
  bool repair_owed = false;  // a holder died inside; the next to enter is told OwnerDied
  bool unrecoverable = false;
  std::int64_t holder_checked_at = 0;  // steady-clock nanoseconds of the last liveness check
  std::uint64_t next_ticket = 1;
  int queued = 0;  // never below the number of queued slots
  // Waiters beyond the slots sleep on `slots_freed` once they set `slot_wanted`.
  bool slot_wanted = false;
  std::atomic<std::uint32_t> slots_freed{0};
  char name[kNameBytes] = {};
  std::uint64_t key = new_object_key();  // names the lock in the pitfall diagnostics
  Waiter waiters[kWaiterSlots];
};
}  // namespace detail

class TANDEM_CAPABILITY("mutex") FairLock {
 public:
  FairLock() : FairLock(std::string_view()) {}
  // Names longer than 47 bytes are cut.
  explicit FairLock(std::string_view name);

  // tandem::Error if the calling thread holds it already (it is not reentrant).
  void lock() TANDEM_ACQUIRE() { acquire_until(detail::Clock::time_point::max(), Relock::throws); }
  // Without waiting; false if another agent holds it, or the calling thread does (as Python's
  // acquire(blocking=False)). The timed forms answer that relock with false at once.
  bool try_lock() TANDEM_TRY_ACQUIRE(true) { return acquire_until(detail::Clock::time_point::min(), Relock::fails); }
  template <class Rep, class Period>
  bool try_lock_for(std::chrono::duration<Rep, Period> timeout) TANDEM_TRY_ACQUIRE(true) {
    return acquire_until(detail::deadline_after(timeout), Relock::fails);
  }
  template <class Clock, class Duration>
  bool try_lock_until(std::chrono::time_point<Clock, Duration> deadline) TANDEM_TRY_ACQUIRE(true) {
    return acquire_until(detail::deadline_at(deadline), Relock::fails);
  }
  void unlock() TANDEM_RELEASE();
  // After OwnerDied, by its holder: the protected state is whole again and the lock usable.
  void mark_consistent();

  std::string name() const;
  // How many agents are queued for it right now, a snapshot (those waiting for a place in the
  // queue, beyond the first 64, are not counted).
  int waiter_count() const;

 private:
  friend struct detail::HandleAccess;
  using SharedStateType = detail::SharedState<detail::FairLockState>;
  explicit FairLock(SharedStateType state) : state_(std::move(state)) {}
  // What locking a FairLock that the calling thread holds does.
  enum class Relock { throws, fails };
  bool acquire_until(detail::Clock::time_point deadline, Relock relock);
  // `tracked_wait`, when given, is started once the caller queues (the diagnostics are on).
  bool take_until(detail::Clock::time_point deadline, Relock relock, std::optional<detail::TrackedWait>* tracked_wait);

  SharedStateType state_;
};

}  // namespace tandem
