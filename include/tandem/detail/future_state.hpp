// The shared state behind Future<R> and Promise<R>, and the "runnable" interface a pool queues.
//
// A state moves through phases by CAS on one 32-bit word, which is also the futex waiters sleep
// on:  pending -> running -> value | error   and   pending -> cancelled.
// Whoever moves a state to running owns the right to complete it; cancel only wins from pending,
// so a value is never stored into a cancelled state and a cancelled task never runs.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stop_token>
#include <type_traits>
#include <utility>

#include "tandem/detail/tracking.hpp"
#include "tandem/detail/wait.hpp"

namespace tandem::detail {

// Something a pool can queue. The queue owns one reference; `run` or `discard` consumes it.
class Runnable {
 public:
  virtual void run() noexcept = 0;
  // Called instead of run() when the task will never run (pool shut down with cancel_pending).
  virtual void discard() noexcept = 0;

 protected:
  ~Runnable() = default;
};

// A callback run once when a state completes, on the completing thread. Callbacks form an
// intrusive stack, so a state without any costs one pointer.
class Callback {
 public:
  virtual ~Callback() = default;
  virtual void operator()() noexcept = 0;
  Callback* next = nullptr;
};

template <class F>
class CallbackFor final : public Callback {
 public:
  explicit CallbackFor(F f) : f_(std::move(f)) {}
  void operator()() noexcept override { f_(); }

 private:
  F f_;
};

enum Phase : std::uint32_t { kPending = 0, kRunning = 1, kValue = 2, kError = 3, kCancelled = 4 };

// The ThreadPool whose worker the calling thread is (nullptr elsewhere): a worker that waits on a
// future of its own pool may run that future's task itself (StateBase::run_here).
inline thread_local const void* this_thread_pool = nullptr;

// Every state is a Runnable so that a queued task carries one vtable pointer, not two: a task
// state is 40 bytes plus its callable, which keeps one submit to one 48-byte allocation. Only
// TaskState is ever queued; for a promise's state, run and discard do nothing.
class StateBase : public Runnable {
 public:
  // `references` handles will each release() once.
  explicit StateBase(std::uint32_t references = 1) noexcept : refs_(references) {}
  StateBase(const StateBase&) = delete;
  StateBase& operator=(const StateBase&) = delete;
  virtual ~StateBase() {
    // Every state completes before its last handle goes (a promise breaks, a discarded task is
    // cancelled), so this list is normally closed; free rather than leak if it is not.
    for (Callback* list = callbacks_.load(std::memory_order_relaxed); list && list != closed_list();) {
      std::unique_ptr<Callback> callback(std::exchange(list, list->next));
    }
  }

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
  // Whether the caller's handle is the only one: nobody else can read the value any more.
  bool sole_handle() const noexcept { return refs_.load(std::memory_order_acquire) == 1; }

  std::uint32_t phase() const noexcept { return word_.load(std::memory_order_acquire) & kPhaseMask; }
  bool ready() const noexcept { return phase() >= kValue; }
  // Whether the work behind it is under way. Virtual: a process pool's task is pending in its
  // state until the answer comes, while its worker may be running it already.
  virtual bool running() const { return phase() == kRunning; }

  // pending -> running. False when the state was cancelled (or already claimed).
  bool try_claim() noexcept { return transition_from(kPending, kRunning); }

  // pending -> cancelled. Completes the state with CancelledError and runs its callbacks.
  bool try_cancel() noexcept {
    std::uint32_t old = word_.load(std::memory_order_acquire);
    do {
      if ((old & kPhaseMask) != kPending) return false;
    } while (!word_.compare_exchange_weak(old, kCancelled, std::memory_order_seq_cst));
    after_completion(old);
    on_cancelled();
    return true;
  }

  // running -> value/error. The result must be stored before; only the claimer calls this.
  void complete(Phase final_phase) noexcept { after_completion(word_.exchange(final_phase, std::memory_order_seq_cst)); }

  void set_error(std::exception_ptr error) noexcept {
    store_error(std::move(error));
    complete(kError);
  }
  // The first half of set_error, for a completer that must finish elsewhere (a process pool
  // decodes results under a lock, and completes them, which runs callbacks, after releasing it).
  void store_error(std::exception_ptr error) noexcept { error_ = std::move(error); }
  const std::exception_ptr& error() const noexcept { return error_; }

  // Runs the task behind this state on the calling thread if the caller is a worker of the
  // task's own pool and nobody has started the task: the very work the caller waits for, so a
  // task that waits for tasks it submitted cannot deadlock its pool. True if it ran.
  virtual bool run_here() noexcept { return false; }

  // Virtual so that a state whose result must be fetched (a process pool's) can help fetch it.
  virtual bool wait_until(Clock::time_point deadline) const {
    if (!ready() && const_cast<StateBase*>(this)->run_here()) return true;
    if (tracking_on() && !ready()) [[unlikely]] {
      const TrackedWait tracked(WaitKind::future, future_key(static_cast<const Runnable*>(this)), {},
                                deadline != Clock::time_point::max());
      return block_until([this] { return ready(); }, [this](Clock::time_point d) { sleep_until(d); }, deadline);
    }
    return block_until([this] { return ready(); }, [this](Clock::time_point d) { sleep_until(d); }, deadline);
  }

  // Runs `f` once the state is complete: at once (on this thread) if it already is.
  template <class F>
  void on_ready(F f) {
    auto callback = std::make_unique<CallbackFor<F>>(std::move(f));
    Callback* head = callbacks_.load(std::memory_order_seq_cst);
    do {
      if (head == closed_list()) {
        (*callback)();
        return;
      }
      callback->next = head;
    } while (!callbacks_.compare_exchange_weak(head, callback.get(), std::memory_order_seq_cst));
    callback.release();
    // The completer may have looked at the list just before this push: then it is ours to run.
    // (Completer: phase store, then list load; here: list store, then phase load; both seq_cst,
    // so at least one side sees the other, and the exchange hands the list to exactly one.)
    if ((word_.load(std::memory_order_seq_cst) & kPhaseMask) >= kValue) run_callbacks();
  }

  void run() noexcept override {}
  void discard() noexcept override {}

 protected:
  // Sleeps (no spinning) until the state is ready or `deadline` passes; returns ready().
  bool sleep_until_ready(Clock::time_point deadline) const {
    while (!ready()) {
      if (Clock::now() >= deadline) return ready();
      sleep_until(deadline);
    }
    return true;
  }

 public:
  // cancel() of a running task: only tasks whose callable takes a std::stop_token can stop.
  virtual void request_stop() noexcept {}
  // After a successful cancel (a process pool then stops the task if a worker has it).
  virtual void on_cancelled() noexcept {}

 private:
  static constexpr std::uint32_t kPhaseMask = 0xff;
  static constexpr std::uint32_t kWaitersBit = 1u << 8;

  // Marks the callback list of a completed state: later registrations run at once.
  static Callback* closed_list() noexcept {
    static CallbackFor<void (*)()> sentinel(+[] {});
    return &sentinel;
  }

  void run_callbacks() noexcept {
    Callback* list = callbacks_.exchange(closed_list(), std::memory_order_seq_cst);
    if (list == closed_list()) return;
    // The stack holds them newest first; run them in registration order.
    Callback* ordered = nullptr;
    while (list) ordered = std::exchange(list, std::exchange(list->next, ordered));
    while (ordered) {
      std::unique_ptr<Callback> callback(std::exchange(ordered, ordered->next));
      (*callback)();
    }
  }

  bool transition_from(std::uint32_t from, std::uint32_t to) noexcept {
    std::uint32_t old = word_.load(std::memory_order_acquire);
    do {
      if ((old & kPhaseMask) != from) return false;
    } while (!word_.compare_exchange_weak(old, (old & ~kPhaseMask) | to, std::memory_order_acq_rel));
    return true;
  }

  void after_completion(std::uint32_t old) noexcept {
    if (old & kWaitersBit) futex_wake_all(word_);
    if (callbacks_.load(std::memory_order_seq_cst) != nullptr) run_callbacks();
  }

  void sleep_until(Clock::time_point deadline) const {
    std::uint32_t old = word_.load(std::memory_order_acquire);
    while ((old & kPhaseMask) < kValue) {
      if ((old & kWaitersBit) ||
          word_.compare_exchange_weak(old, old | kWaitersBit, std::memory_order_acq_rel)) {
        futex_wait(word_, old | kWaitersBit, deadline);
        return;
      }
    }
  }

  std::atomic<std::uint32_t> refs_;
  mutable std::atomic<std::uint32_t> word_{kPending};
  std::exception_ptr error_;
  std::atomic<Callback*> callbacks_{nullptr};
};

template <class R>
class State : public StateBase {
 public:
  using StateBase::StateBase;

  template <class... Args>
  void set_value(Args&&... args) {
    store_value(std::forward<Args>(args)...);
    complete(kValue);
  }
  // The first half of set_value (see store_error).
  template <class... Args>
  void store_value(Args&&... args) {
    value_.emplace(std::forward<Args>(args)...);
  }
  const R& value() const noexcept { return *value_; }
  // Moves the value out (std::move(future).get(), imap's window); value_taken() from then on.
  R take_value() noexcept(std::is_nothrow_move_constructible_v<R>) {
    taken_ = true;
    return std::move(*value_);
  }
  bool value_taken() const noexcept { return taken_; }

 private:
  std::optional<R> value_;
  bool taken_ = false;
};

template <>
class State<void> : public StateBase {
 public:
  using StateBase::StateBase;

  void set_value() { complete(kValue); }
  void store_value() noexcept {}
};

// An owning, intrusive reference to a state.
template <class S>
class StateRef {
 public:
  StateRef() = default;
  // Adopts a reference the caller already holds.
  explicit StateRef(S* state) noexcept : state_(state) {}
  StateRef(const StateRef& other) noexcept : state_(other.state_) {
    if (state_) state_->add_ref();
  }
  StateRef(StateRef&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  StateRef& operator=(StateRef other) noexcept {
    std::swap(state_, other.state_);
    return *this;
  }
  ~StateRef() {
    if (state_) state_->release();
  }
  S* get() const noexcept { return state_; }
  S* operator->() const noexcept { return state_; }
  S& operator*() const noexcept { return *state_; }
  explicit operator bool() const noexcept { return state_ != nullptr; }

 private:
  S* state_ = nullptr;
};

// Stores the outcome of invoking `f` into `state`, which the caller has claimed.
template <class R, class F>
void fulfil(State<R>& state, F&& f) noexcept {
  try {
    if constexpr (std::is_void_v<R>) {
      std::forward<F>(f)();
      state.set_value();
    } else {
      state.set_value(std::forward<F>(f)());
    }
  } catch (...) {
    state.set_error(std::current_exception());
  }
}

// A queued task whose result lands in its own state: one allocation per submit. `Fn` takes a
// std::stop_token: the task's own when `Stoppable` (the submitted callable asked for one), else an
// empty one, and then the state carries no stop_source at all. It starts with two references:
// the queue's and the Future's. `pool` is the pool it is queued in (see this_thread_pool).
template <class R, class Fn, bool Stoppable>
class TaskState final : public State<R> {
 public:
  TaskState(Fn fn, const void* pool) : State<R>(2), fn_(std::move(fn)), pool_(pool) {}

  void run() noexcept override {
    if (this->try_claim()) fulfil(*this, [this]() -> R { return invoke(); });
    this->release();
  }
  // The queue keeps its reference: when a worker takes the task later, run() finds it claimed.
  bool run_here() noexcept override {
    if (pool_ != this_thread_pool || !this->try_claim()) return false;
    if (tracking_on()) [[unlikely]] {
      const TrackedTask tracked(future_key(static_cast<const Runnable*>(this)));
      fulfil(*this, [this]() -> R { return invoke(); });
    } else {
      fulfil(*this, [this]() -> R { return invoke(); });
    }
    return true;
  }
  void discard() noexcept override {
    this->try_cancel();
    this->release();
  }
  void request_stop() noexcept override {
    if constexpr (Stoppable) stop_.request_stop();
  }

 private:
  struct NoStop {};

  R invoke() {
    if constexpr (Stoppable) {
      return fn_(stop_.get_token());
    } else {
      return fn_(std::stop_token());
    }
  }

  Fn fn_;
  const void* pool_;
  [[no_unique_address]] std::conditional_t<Stoppable, std::stop_source, NoStop> stop_;
};

}  // namespace tandem::detail
