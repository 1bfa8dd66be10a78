// FairLock's bookkeeping lives behind a robust mutex and stays consistent at every step (so a
// process killed inside it leaves nothing to repair): the holder, and a queue of waiters in
// ticket order, each with a futex word of its own. unlock() picks the next holder itself and
// only then signals it, which is what keeps a late-comer from barging in.
#include "tandem/fair_lock.hpp"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "tandem/error.hpp"

namespace tandem {
namespace detail {
namespace {

using Agent = FairLockState::Agent;
using Waiter = FairLockState::Waiter;

// A waiter's signal word. The waiter spins while it reads kWaiting and announces kSleeping
// before it sleeps, so a hand-over pays for a futex wake only when the receiver sleeps. The
// receiver writes kEntered on its own, without the bookkeeping mutex (which its unlocker, back
// in lock(), is often holding): until then it has not touched what the lock protects, and a
// receiver that died before that point is no reason for OwnerDied.
constexpr std::uint32_t kWaiting = 0;
constexpr std::uint32_t kSleeping = 1;
constexpr std::uint32_t kLookAgain = 2;  // the lock became unrecoverable
constexpr std::uint32_t kHanded = 3;
constexpr std::uint32_t kEntered = 4;

// Bumped in every forked child, whose threads must not go on as their parent's.
std::atomic<std::uint64_t> forks_seen{0};
void count_fork() { forks_seen.fetch_add(1, std::memory_order_relaxed); }
// Registered at start-up, not at first use: a first use that raced a fork in another thread would
// leave the child a half-done static initialization, and the child would hang in it.
const bool counting_forks = ::pthread_atfork(nullptr, nullptr, count_fork) == 0;

// The calling thread, cached: asking the kernel costs two system calls.
Agent calling_agent() {
  thread_local Agent cached;
  thread_local std::uint64_t cached_at_fork = 0;  // forks_seen + 1 when cached
  const std::uint64_t fork_count = forks_seen.load(std::memory_order_relaxed) + 1;
  if (!counting_forks || cached_at_fork != fork_count) {
    cached = {ProcessIdentity::self(), static_cast<std::int32_t>(::gettid())};
    cached_at_fork = fork_count;
  }
  return cached;
}

bool is_nobody(const Agent& agent) { return agent.process.pid == 0; }

// A thread that ended while holding the lock leaves its process alive: the kernel then knows
// no such thread in that process any more.
bool has_ended(const Agent& agent, const ProcessIdentity& self) {
  if (!(agent.process == self) && !agent.process.alive()) return true;
  return ::syscall(SYS_tgkill, agent.process.pid, agent.tid, 0) == -1 && errno == ESRCH;
}

// A waiter is a thread inside lock(), which cannot end there unless its whole process does.
bool waiter_is_gone(const Waiter& waiter, const ProcessIdentity& self) {
  return !(waiter.agent.process == self) && !waiter.agent.process.alive();
}

bool holder_entered(const FairLockState& state) {
  return state.holder_slot < 0 || state.waiters[state.holder_slot].signal.load(std::memory_order_acquire) == kEntered;
}

std::int64_t steady_nanoseconds() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

void send(Waiter& waiter, std::uint32_t signal) {
  if (waiter.signal.exchange(signal, std::memory_order_acq_rel) == kSleeping) futex_wake(waiter.signal, 1);
}

Waiter* enqueue(FairLockState& state, const Agent& agent) {
  for (Waiter& waiter : state.waiters) {
    if (!is_nobody(waiter.agent)) continue;
    waiter.agent = agent;
    waiter.signal.store(kWaiting, std::memory_order_relaxed);
    ++state.queued;  // before the ticket, so that the count is never short
    waiter.ticket = state.next_ticket++;
    return &waiter;
  }
  return nullptr;
}

void free_slot(FairLockState& state, Waiter& waiter) {
  if (waiter.ticket != 0) {
    waiter.ticket = 0;
    --state.queued;
  }
  waiter.agent = {};
  if (state.slot_wanted) {
    state.slot_wanted = false;
    state.slots_freed.fetch_add(1, std::memory_order_release);
    futex_wake_all(state.slots_freed);
  }
}

// Cleared before the slot is freed: a process killed in between leaks the slot rather than
// leaving an index to a slot that someone else may take.
void release_holder_slot(FairLockState& state) {
  const int slot = std::exchange(state.holder_slot, -1);
  if (slot >= 0) free_slot(state, state.waiters[slot]);
}

// The lock goes to the longest-waiting live waiter, or becomes free when there is none. The
// holder changes only once the next one is known, so a process killed in here leaves a holder
// that the waiters will find dead.
void hand_over(FairLockState& state, const ProcessIdentity& self) {
  while (state.queued > 0) {
    Waiter* first = nullptr;
    for (Waiter& waiter : state.waiters) {
      if (waiter.ticket != 0 && (first == nullptr || waiter.ticket < first->ticket)) first = &waiter;
    }
    if (first == nullptr) {  // a count left high by a process killed in the middle of an update
      state.queued = 0;
      break;
    }
    if (waiter_is_gone(*first, self)) {
      free_slot(state, *first);
      continue;
    }
    state.holder = first->agent;
    state.holder_slot = static_cast<int>(first - state.waiters);
    first->ticket = 0;
    --state.queued;
    send(*first, kHanded);
    return;
  }
  state.holder = {};
  state.holder_slot = -1;
}

// Reading another process's liveness costs a /proc read: one check per interval suffices,
// whoever makes it.
void take_over_if_holder_ended(FairLockState& state, const ProcessIdentity& self) {
  if (is_nobody(state.holder)) return;
  const std::int64_t now = steady_nanoseconds();
  if (now - state.holder_checked_at < std::chrono::nanoseconds(kLivenessCheckEvery).count()) return;
  state.holder_checked_at = now;
  if (!has_ended(state.holder, self)) return;
  if (holder_entered(state)) state.repair_owed = true;
  release_holder_slot(state);
  hand_over(state, self);
}

// repair_owed changes only under the holder's hand or at the take-over from a dead holder, so
// a receiver that was just handed the lock may read it without the bookkeeping mutex.
bool enter(const FairLockState& state) {
  if (state.repair_owed) {
    throw OwnerDied(
        "FairLock: its previous holder died holding it; the caller holds it now: repair the protected state, "
        "call mark_consistent(), then unlock");
  }
  return true;
}

bool accept_hand_over(const FairLockState& state, Waiter& place) {
  place.signal.store(kEntered, std::memory_order_release);
  return enter(state);
}

[[noreturn]] void throw_unrecoverable() {
  throw LockUnrecoverable(
      "FairLock: a holder died and the next one unlocked it without mark_consistent(); it cannot be taken again");
}

// Spins briefly, since the hand-over often comes within microseconds, then sleeps until a
// signal or `until`. Returns the signal seen last.
std::uint32_t await_signal(std::atomic<std::uint32_t>& signal, Clock::time_point until) {
  const auto spin_end = Clock::now() + kSpinBudget;
  for (unsigned spins = 1;; ++spins) {
    if (const std::uint32_t seen = signal.load(std::memory_order_acquire); seen != kWaiting) return seen;
    cpu_relax();
    if (spins % 64 == 0 && Clock::now() >= spin_end) break;
  }
  std::uint32_t seen = kWaiting;
  if (!signal.compare_exchange_strong(seen, kSleeping, std::memory_order_acquire)) return seen;
  futex_wait(signal, kSleeping, until);
  return signal.load(std::memory_order_acquire);
}

}  // namespace

FairLockState::FairLockState(std::string_view lock_name) {
  std::size_t length = std::min(lock_name.size(), kNameBytes - 1);
  // Cut between characters, not inside a UTF-8 sequence.
  while (length < lock_name.size() && length > 0 && (static_cast<unsigned char>(lock_name[length]) & 0xc0) == 0x80)
    --length;
  lock_name.copy(name, length);
}

}  // namespace detail

FairLock::FairLock(std::string_view name) : state_(detail::SharedState<detail::FairLockState>::create(0, name)) {}

// While the diagnostics are on, a blocking acquisition is order-checked first, marked as a wait
// once it queues, and every acquisition (OwnerDied included: the caller holds the lock then) is
// recorded as held.
bool FairLock::acquire_until(detail::Clock::time_point deadline, Relock relock) {
  using namespace detail;
  if (!tracking_on()) [[likely]]
    return take_until(deadline, relock, nullptr);
  const FairLockState& state = *state_;
  const LockLabel label{state.key, std::string_view(state.name, ::strnlen(state.name, FairLockState::kNameBytes))};
  if (deadline == Clock::time_point::max()) check_lock_order(label);  // timed: no order (see lock.cpp)
  std::optional<TrackedWait> tracked_wait;
  bool taken = false;
  try {
    taken = take_until(deadline, relock, &tracked_wait);
  } catch (const OwnerDied&) {
    tracked_wait.reset();
    lock_acquired(label);
    throw;
  }
  tracked_wait.reset();
  if (taken) lock_acquired(label);
  return taken;
}

bool FairLock::take_until(detail::Clock::time_point deadline, Relock relock,
                          std::optional<detail::TrackedWait>* tracked_wait) {
  using namespace detail;
  FairLockState& state = *state_;
  const Agent self = calling_agent();
  Waiter* place = nullptr;  // this caller's slot, once queued
  for (;;) {
    const auto nap_end = [deadline] { return std::min(deadline, Clock::now() + kLivenessCheckEvery); };
    if (place == nullptr) {
      std::uint32_t slots_freed_seen = 0;
      {
        BookkeepingGuard guard(state.bookkeeping);
        if (state.unrecoverable) throw_unrecoverable();
        if (state.holder == self) {
          if (relock == Relock::fails) return false;
          throw Error("FairLock: this thread holds it already (a FairLock is not reentrant)");
        }
        take_over_if_holder_ended(state, self.process);
        if (is_nobody(state.holder)) {
          state.holder = self;
          state.holder_slot = -1;
          return enter(state);
        }
        if (Clock::now() >= deadline) return false;
        place = enqueue(state, self);
        if (tracked_wait != nullptr && !tracked_wait->has_value()) {
          const std::string_view name(state.name, ::strnlen(state.name, FairLockState::kNameBytes));
          tracked_wait->emplace(WaitKind::lock, state.key, name, deadline != Clock::time_point::max());
        }
        if (place == nullptr) {  // every slot taken: wait for one, then arrive again
          state.slot_wanted = true;
          slots_freed_seen = state.slots_freed.load(std::memory_order_relaxed);
        }
      }
      if (place == nullptr) futex_wait(state.slots_freed, slots_freed_seen, nap_end());
      continue;
    }
    if (await_signal(place->signal, nap_end()) == kHanded) return accept_hand_over(state, *place);
    BookkeepingGuard guard(state.bookkeeping);
    if (!(state.holder == self) && !state.unrecoverable) take_over_if_holder_ended(state, self.process);
    if (state.holder == self) return accept_hand_over(state, *place);
    if (state.unrecoverable || Clock::now() >= deadline) {
      free_slot(state, *place);
      if (state.unrecoverable) throw_unrecoverable();
      return false;
    }
    place->signal.store(kWaiting, std::memory_order_relaxed);
  }
}

void FairLock::unlock() {
  using namespace detail;
  FairLockState& state = *state_;
  const Agent self = calling_agent();
  BookkeepingGuard guard(state.bookkeeping);
  if (!(state.holder == self)) throw Error("FairLock::unlock: the calling thread does not hold this lock");
  release_holder_slot(state);
  if (tracking_on()) [[unlikely]]
    lock_released(state.key);
  if (!state.repair_owed) {
    hand_over(state, self.process);
    return;
  }
  state.unrecoverable = true;
  state.holder = {};
  for (Waiter& waiter : state.waiters) {
    if (waiter.ticket != 0) send(waiter, kLookAgain);
  }
}

void FairLock::mark_consistent() {
  detail::FairLockState& state = *state_;
  const detail::Agent self = detail::calling_agent();
  detail::BookkeepingGuard guard(state.bookkeeping);
  if (!(state.holder == self) || !state.repair_owed)
    throw Error("FairLock::mark_consistent: only the holder that was told OwnerDied can call it");
  state.repair_owed = false;
}

std::string FairLock::name() const {
  const char* name = state_->name;
  return std::string(name, ::strnlen(name, detail::FairLockState::kNameBytes));
}

int FairLock::waiter_count() const {
  detail::BookkeepingGuard guard(state_->bookkeeping);
  return state_->queued;
}

}  // namespace tandem
