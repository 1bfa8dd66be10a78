// Synchronized<T>: a T fused with its lock, reachable only while the lock is held (folly's
// Synchronized), so unguarded access cannot be written by accident.
//
//   tandem::Synchronized<Account> account;                       // threads and processes
//   account.with_lock([](Account& a) { a.balance += 10; });
//   { auto locked = account.lock(); locked->balance -= 5; }   // unlocked at the end of scope
//   tandem::Synchronized<std::vector<std::string>, tandem::Sharing::threads> names;   // threads only
//
// A Synchronized is a handle: copies are the same data and lock. Where the data lives is part of
// the type, never guessed from T:
// - Sharing::processes (the default): T, trivially copyable and holding no address, lives in
//   shared memory beside a tandem::Lock, and the handle travels to other processes like a Lock
//   (argument or inheritance, any start method). Another T does not compile, with a message
//   that names Sharing::threads.
// - Sharing::threads: any T, in this process's memory, guarded by a lock of its own. Shared
//   between threads; sending it to a process does not compile (a forked child would only see a
//   copy).
//
// A holder that died (thread or process): lock() and with_lock() throw tandem::OwnerDied with
// the lock held by the caller, who then calls recover(repair): repair(T&) runs under that lock,
// the lock is marked consistent and released.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "tandem/detail/holds_address.hpp"
#include "tandem/detail/traveller.hpp"
#include "tandem/detail/shared_state.hpp"
#include "tandem/lock.hpp"

namespace tandem {

namespace detail {
// A T beside the lock that guards it, in shared memory.
template <class T, RobustMutex::Kind kKind>
struct GuardedState {
  static constexpr std::uint32_t kTag = 0x53594e43;  // "SYNC"
  template <class... Args>
  explicit GuardedState(Args&&... args) : lock(std::in_place, kKind, std::string_view()), value(std::forward<Args>(args)...) {}
  Tagged<LockState> lock;
  std::uint64_t value_size = sizeof(T);  // checked when a handle arrives
  T value;
};

}  // namespace detail

// Where a Synchronized keeps its data, and so which agents reach it.
enum class Sharing {
  processes,  // shared memory: threads and processes; T trivially copyable, holding no address
  threads,    // this process's memory: threads only; any T
};

template <class T, Sharing kSharing = Sharing::processes>
class Synchronized {
  static constexpr bool kShared = kSharing == Sharing::processes;
  static_assert(!kShared || (std::is_trivially_copyable_v<T> && !detail::kHoldsAddress<T>),
                "tandem::Synchronized<T> keeps T in shared memory, for threads and processes, which needs a "
                "trivially copyable T holding no pointer, reference or view. For any other T shared by threads "
                "only, write tandem::Synchronized<T, tandem::Sharing::threads>.");
  using SharedData = detail::SharedState<detail::GuardedState<T, detail::RobustMutex::Kind::plain>>;
  using Storage = std::conditional_t<kShared, SharedData, std::shared_ptr<T>>;

 public:
  // The T is built from `args`.
  template <class... Args>
    requires std::is_constructible_v<T, Args...>
  explicit Synchronized(Args&&... args)
      : storage_(make_storage(std::forward<Args>(args)...)), lock_(lock_of(storage_)) {}

  // The data, locked for the lifetime of this object.
  class Locked {
   public:
    Locked(Locked&& other) noexcept : owner_(std::exchange(other.owner_, nullptr)) {}
    Locked& operator=(Locked&&) = delete;
    ~Locked() {
      if (owner_) owner_->lock_.unlock();
    }
    T* operator->() const noexcept { return &owner_->value_ref(); }
    T& operator*() const noexcept { return owner_->value_ref(); }

   private:
    friend class Synchronized;
    explicit Locked(Synchronized* owner) noexcept : owner_(owner) {}
    Synchronized* owner_;
  };

  // Blocks until the lock is free. OwnerDied: see the top of this file.
  Locked lock() {
    lock_.lock();
    return Locked(this);
  }
  // nullopt when the lock is taken (and stayed taken for `timeout`, until `deadline`).
  std::optional<Locked> try_lock() {
    if (!lock_.try_lock()) return std::nullopt;
    return Locked(this);
  }
  template <class Rep, class Period>
  std::optional<Locked> try_lock_for(std::chrono::duration<Rep, Period> timeout) {
    if (!lock_.try_lock_for(timeout)) return std::nullopt;
    return Locked(this);
  }
  template <class Clock, class Duration>
  std::optional<Locked> try_lock_until(std::chrono::time_point<Clock, Duration> deadline) {
    if (!lock_.try_lock_until(deadline)) return std::nullopt;
    return Locked(this);
  }
  // f(T&) under the lock; returns what f returns.
  template <class F>
  decltype(auto) with_lock(F&& f) {
    Locked locked = lock();
    return std::forward<F>(f)(*locked);
  }
  // A copy of the data, taken under the lock.
  T copy() {
    Locked locked = lock();
    return *locked;
  }
  // After lock() or with_lock() threw OwnerDied in this thread (which then holds the lock):
  // the lock is marked consistent, repair(T&) runs under it, and it is released, also if repair
  // throws. tandem::Error, touching nothing, when no OwnerDied is pending.
  template <class F>
  void recover(F&& repair) {
    lock_.mark_consistent();
    Locked locked(this);
    std::forward<F>(repair)(*locked);
  }

 private:
  friend struct detail::Traveller<Synchronized>;
  explicit Synchronized(Storage storage) : storage_(std::move(storage)), lock_(lock_of(storage_)) {}

  template <class... Args>
  static Storage make_storage(Args&&... args) {
    if constexpr (kShared) {
      return SharedData::create(0, std::forward<Args>(args)...);
    } else {
      return std::make_shared<T>(std::forward<Args>(args)...);
    }
  }
  static Lock lock_of(const Storage& storage) {
    if constexpr (kShared) {
      return detail::LockMaker<detail::RobustMutex::Kind::plain>::from(
          storage.inner(&detail::GuardedState<T, detail::RobustMutex::Kind::plain>::lock));
    } else {
      return Lock();
    }
  }
  T& value_ref() const noexcept {
    if constexpr (kShared) {
      return storage_->value;
    } else {
      return *storage_;
    }
  }

  Storage storage_;
  Lock lock_;  // a handle to the lock beside the data in shared memory, or one of its own
};

namespace detail {
template <class T>
struct Traveller<Synchronized<T, Sharing::processes>> {
  using State = GuardedState<T, RobustMutex::Kind::plain>;
  static void encode(ByteWriter& out, const Synchronized<T>& value) { value.storage_.encode(out); }
  static Synchronized<T> decode(ByteReader& in) {
    auto state = SharedState<State>::decode(in);
    if (state->value_size != sizeof(T)) throw_malformed("a Synchronized<T> handle names data of another size");
    return Synchronized<T>(std::move(state));
  }
};
}  // namespace detail

}  // namespace tandem
