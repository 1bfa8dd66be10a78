// Future<R>: the result of work that runs elsewhere, and Promise<R>: the side that produces it.
//
// A Future is a cheap, copyable handle (like std::shared_future or Python's concurrent.futures
// Future): copies see the same result, `get` may be called any number of times and returns a
// reference into the shared state, valid while any copy of the handle lives. On an rvalue
// (`pool.submit(f).get()`, `std::move(future).get()`) get returns the value itself, moved out.
//
//   tandem::Future<int> f = pool.submit([] { return 6 * 7; });
//   int answer = f.get();                       // 42, or rethrows what the task threw
//   auto text = f.then([](int v) { return std::to_string(v); });
//
// Waiting never burns a core: a waiter spins for ~50 us, then sleeps on a futex. A ThreadPool
// worker that waits on a future of its own pool whose task nobody has started runs that task
// itself (see thread_pool.hpp); no wait runs unrelated work.
#pragma once

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <deque>
#include <exception>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <type_traits>
#include <utility>
#include <vector>

#include "tandem/detail/deadline.hpp"
#include "tandem/detail/future_state.hpp"
#include "tandem/detail/inbox.hpp"
#include "tandem/error.hpp"

namespace tandem {

template <class R>
class Future;

namespace detail {

template <class T>
struct IsFuture : std::false_type {};
template <class T>
struct IsFuture<Future<T>> : std::true_type {};

// What the rest of the library needs of a Future that users do not.
struct FutureAccess {
  template <class T>
  static Future<T> make(StateRef<State<T>> state) {
    return Future<T>(std::move(state));
  }
  template <class T>
  static State<T>& state(const Future<T>& future) {
    return *future.state_;
  }
};

[[noreturn]] void throw_no_state();
[[noreturn]] void throw_value_taken();
// Waits a little for the producer's own reference to go (a pool drops it just after completing
// the state): true once `state` has no other handle.
bool become_sole_handle(const StateBase& state);
[[noreturn]] void throw_timeout(const char* what);
std::exception_ptr cancelled_error();
void rethrow_outcome(const StateBase& state);

}  // namespace detail

template <class R>
class Promise;

template <class R>
class Future {
  static_assert(!std::is_reference_v<R>, "Future<R&> is not supported: return a value or a pointer");

 public:
  using value_type = R;

  // An empty handle; valid() is false and every other member throws tandem::Error.
  Future() = default;

  bool valid() const noexcept { return static_cast<bool>(state_); }

  // Blocks until done, then returns the value (a const reference into the shared state; void for
  // Future<void>) or rethrows the task's exception; CancelledError when it was cancelled.
  decltype(auto) get() const& {
    wait();
    return outcome();
  }
  // On an rvalue: the value itself (`for (auto x : pool.submit(f).get())` loops over a live
  // value), moved out of the shared state when this is the state's only handle, copied when
  // another handle (a copy of this future, a then() continuation) may still read it. A move-only
  // result needs the only handle: else tandem::Error. This future is empty afterwards.
  R get() && {
    wait();
    return take();
  }
  // Like get(), but throws TimeoutError when not done within `timeout`.
  template <class Rep, class Period>
  decltype(auto) get_for(std::chrono::duration<Rep, Period> timeout) const& {
    if (!wait_for(timeout)) detail::throw_timeout("Future::get_for: the result did not arrive in time");
    return outcome();
  }
  template <class Rep, class Period>
  R get_for(std::chrono::duration<Rep, Period> timeout) && {
    if (!wait_for(timeout)) detail::throw_timeout("Future::get_for: the result did not arrive in time");
    return take();
  }
  template <class Clock, class Duration>
  decltype(auto) get_until(std::chrono::time_point<Clock, Duration> deadline) const& {
    if (!wait_until(deadline)) detail::throw_timeout("Future::get_until: the result did not arrive in time");
    return outcome();
  }
  template <class Clock, class Duration>
  R get_until(std::chrono::time_point<Clock, Duration> deadline) && {
    if (!wait_until(deadline)) detail::throw_timeout("Future::get_until: the result did not arrive in time");
    return take();
  }

  void wait() const { checked().wait_until(detail::Clock::time_point::max()); }
  // True when done within `timeout`.
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> timeout) const {
    return checked().wait_until(detail::deadline_after(timeout));
  }
  template <class Clock, class Duration>
  bool wait_until(std::chrono::time_point<Clock, Duration> deadline) const {
    return checked().wait_until(detail::deadline_at(deadline));
  }

  // Done: finished with a value or an exception, or cancelled.
  bool done() const { return checked().ready(); }
  // The task has begun and has not finished (on a ProcessPool: its worker process runs it).
  bool running() const { return checked().running(); }
  bool cancelled() const { return checked().phase() == detail::kCancelled; }

  // True when the future ends cancelled: get() then throws CancelledError.
  // - A pending task is cancelled and will never run: true; so is a cancelled one, again.
  // - A task running on a ThreadPool cannot be stopped from outside: it is asked to stop through
  //   its std::stop_token (if it takes one) and finishes as it will; false.
  // - A task running on a ProcessPool is stopped: its worker process is killed (and replaced); true.
  // - A finished one: false.
  bool cancel() const {
    auto& state = checked();
    if (state.try_cancel() || state.phase() == detail::kCancelled) return true;
    if (state.phase() == detail::kRunning) state.request_stop();
    return false;
  }

  // Blocks until done; the exception the task ended with, or nullptr after a value. The timed
  // forms throw TimeoutError when not done in time (as Python's exception(timeout)).
  std::exception_ptr exception() const {
    wait();
    return done_exception();
  }
  template <class Rep, class Period>
  std::exception_ptr exception_for(std::chrono::duration<Rep, Period> timeout) const {
    if (!wait_for(timeout)) detail::throw_timeout("Future::exception_for: the task was not done in time");
    return done_exception();
  }
  template <class Clock, class Duration>
  std::exception_ptr exception_until(std::chrono::time_point<Clock, Duration> deadline) const {
    if (!wait_until(deadline)) detail::throw_timeout("Future::exception_until: the task was not done in time");
    return done_exception();
  }

  // Chains `f` to run when this future is done, inline: on the thread that completes it (or at
  // once, here, if it is done already). `f` takes either the done Future<R> itself (to see
  // errors) or the value (`const R&`, or nothing for void); in the second form an exception or
  // cancellation skips `f` and passes on to the returned future. The completing thread may be
  // any: a pool worker, or for a ProcessPool a thread that waits in an unrelated get() and reads
  // the answer; an `f` that takes a lock that thread holds deadlocks it. Keep `f` short and
  // lock-free, or give it an executor.
  template <class F>
  auto then(F f) const {
    using U = ThenResult<F>;
    Promise<U> promise;
    Future<U> next = promise.get_future();
    checked().on_ready([self = *this, promise = std::move(promise), f = std::move(f)]() mutable {
      promise.set_from([&]() -> U { return continue_with(self, f); });
    });
    return next;
  }
  // Like then(f), but `f` runs as a task of `executor` (a ThreadPool; anything whose submit(g)
  // runs a callable g on threads of its own), never on the completing thread. If the executor
  // refuses the task (PoolClosed after its shutdown), the returned future throws that.
  //
  //   auto report = pool.submit(load).then(ui_pool, [](const Data& d) { return render(d); });
  template <class Executor, class F>
    requires requires(Executor& executor) { executor.submit([] {}); }
  auto then(Executor& executor, F f) const {
    using U = ThenResult<F>;
    auto promise = std::make_shared<Promise<U>>();
    Future<U> next = promise->get_future();
    checked().on_ready([self = *this, promise, f = std::move(f), &executor]() mutable {
      try {
        executor.submit([self, promise, f = std::move(f)]() mutable {
          promise->set_from([&]() -> U { return continue_with(self, f); });
        });
      } catch (...) {
        promise->set_exception(std::current_exception());
      }
    });
    return next;
  }

  // The state's identity, for as_completed and friends.
  const void* id() const noexcept { return state_.get(); }

 private:
  template <class F>
  struct ThenResultOf {
    static auto pick() {
      if constexpr (std::is_invocable_v<F&, const Future<R>&>) {
        return std::type_identity<std::invoke_result_t<F&, const Future<R>&>>{};
      } else if constexpr (std::is_void_v<R>) {
        return std::type_identity<std::invoke_result_t<F&>>{};
      } else {
        return std::type_identity<std::invoke_result_t<F&, const R&>>{};
      }
    }
    using type = typename decltype(pick())::type;
  };
  template <class F>
  using ThenResult = typename ThenResultOf<F>::type;

  template <class>
  friend class Promise;
  template <class>
  friend class Future;
  friend struct detail::FutureAccess;

  explicit Future(detail::StateRef<detail::State<R>> state) noexcept : state_(std::move(state)) {}

  detail::State<R>& checked() const {
    if (!state_) detail::throw_no_state();
    return *state_.get();
  }

  template <class F>
  static decltype(auto) continue_with(const Future& self, F& f) {
    if constexpr (std::is_invocable_v<F&, const Future<R>&>) {
      return f(self);
    } else if constexpr (std::is_void_v<R>) {
      self.get();
      return f();
    } else {
      return f(self.get());
    }
  }
  std::exception_ptr done_exception() const {
    const auto& state = *state_;
    if (state.phase() == detail::kCancelled) return detail::cancelled_error();
    return state.error();
  }
  decltype(auto) outcome() const {
    const auto& state = *state_;
    if (state.phase() != detail::kValue) detail::rethrow_outcome(state);
    if constexpr (!std::is_void_v<R>) {
      if (state.value_taken()) detail::throw_value_taken();
      return static_cast<const R&>(state.value());
    }
  }
  R take() {
    const detail::StateRef<detail::State<R>> state = std::move(state_);
    if (state->phase() != detail::kValue) detail::rethrow_outcome(*state);
    if constexpr (!std::is_void_v<R>) {
      if (state->value_taken()) detail::throw_value_taken();
      if constexpr (std::is_copy_constructible_v<R>) {
        if (!state->sole_handle()) return state->value();
      } else if (!detail::become_sole_handle(*state)) {
        throw Error("Future: get() on an rvalue moves a move-only result out, which needs the future's only handle");
      }
      return state->take_value();
    }
  }

  detail::StateRef<detail::State<R>> state_;
};

// The producing side of a Future. Move-only; destroying it without setting a result completes
// the future with BrokenPromise, so a consumer never waits forever.
//
//   tandem::Promise<int> p;  auto f = p.get_future();  p.set_value(7);
template <class R>
class Promise {
 public:
  Promise() : state_(new_state()) {}
  Promise(Promise&&) noexcept = default;
  Promise& operator=(Promise&& other) noexcept {
    if (this != &other) {
      abandon();
      state_ = std::move(other.state_);
      future_taken_ = other.future_taken_;
      satisfied_ = other.satisfied_;
    }
    return *this;
  }
  ~Promise() { abandon(); }

  // One Future per promise; copy the Future to share it.
  Future<R> get_future() {
    if (!state_) detail::throw_no_state();
    if (future_taken_) throw Error("Promise::get_future: the future was already taken");
    future_taken_ = true;
    return Future<R>(state_);
  }

  // Stores the value; false (and nothing stored) when the future was cancelled first.
  template <class... Args>
  bool set_value(Args&&... args) {
    if (!claim()) return false;
    state_->set_value(std::forward<Args>(args)...);
    done();
    return true;
  }
  bool set_exception(std::exception_ptr error) {
    if (!error) throw Error("Promise::set_exception: null exception_ptr");
    if (!claim()) return false;
    state_->set_error(std::move(error));
    done();
    return true;
  }
  // Stores what `f()` returns, or what it throws.
  template <class F>
  bool set_from(F&& f) {
    if (!claim()) return false;
    detail::fulfil(*state_.get(), std::forward<F>(f));
    done();
    return true;
  }

 private:
  static detail::StateRef<detail::State<R>> new_state() {
    return detail::StateRef<detail::State<R>>(std::make_unique<detail::State<R>>().release());
  }
  // A promise whose future was taken is done with its state once it has set it: the future may
  // then be the state's only handle (so std::move(future).get() moves the value out).
  void done() noexcept {
    if (future_taken_) {
      state_ = {};
      satisfied_ = true;
    }
  }
  bool claim() {
    if (satisfied_) throw Error("Promise: the result was already set");
    if (!state_) detail::throw_no_state();
    if (state_->ready()) {
      if (state_->phase() == detail::kCancelled) return false;
      throw Error("Promise: the result was already set");
    }
    return state_->try_claim();
  }
  void abandon() noexcept {
    if (state_ && state_->try_claim()) {
      state_->set_error(std::make_exception_ptr(BrokenPromise("the promise was destroyed without a result")));
    }
  }

  detail::StateRef<detail::State<R>> state_;
  bool future_taken_ = false;
  bool satisfied_ = false;
};

// ---- waiting on many futures ----------------------------------------------------------------

namespace detail {

// One-shot signal that any number of futures can raise; used by wait_any.
struct Signal {
  std::atomic<std::uint32_t> word{0};
  void raise() noexcept {
    word.store(1, std::memory_order_release);
    futex_wake_all(word);
  }
  bool wait_until(Clock::time_point deadline) {
    return block_until([this] { return word.load(std::memory_order_acquire) != 0; },
                       [this](Clock::time_point d) { futex_wait(word, 0, d); }, deadline);
  }
};

template <class Range>
std::optional<std::size_t> first_done(const Range& futures) {
  std::size_t index = 0;
  for (const auto& future : futures) {
    if (future.done()) return index;
    ++index;
  }
  return std::nullopt;
}

// On a pool worker: runs the task of one of `futures` that nobody has started (the work the
// caller waits for; see StateBase::run_here). The index of the one it ran, if any.
template <class Range>
std::optional<std::size_t> run_one_here(const Range& futures) {
  std::size_t index = 0;
  for (const auto& future : futures) {
    if (!future.done() && FutureAccess::state(future).run_here()) return index;
    ++index;
  }
  return std::nullopt;
}

template <class Range>
std::optional<std::size_t> wait_any_by(const Range& futures, Clock::time_point deadline) {
  if (auto index = first_done(futures)) return index;
  if (std::ranges::empty(futures)) throw Error("wait_any: no futures to wait for");
  if (auto index = run_one_here(futures)) return index;
  auto signal = std::make_shared<Signal>();
  for (const auto& future : futures) {
    future.then([signal](const auto&) { signal->raise(); });
  }
  signal->wait_until(deadline);
  return first_done(futures);
}

}  // namespace detail

// Blocks until every future in `futures` is done (value, exception or cancelled).
template <std::ranges::input_range Range>
void wait_all(const Range& futures) {
  for (const auto& future : futures) future.wait();
}
// True when all were done by `deadline`.
template <std::ranges::input_range Range, class Clock, class Duration>
bool wait_all_until(const Range& futures, std::chrono::time_point<Clock, Duration> deadline) {
  const auto steady_deadline = detail::deadline_at(deadline);
  for (const auto& future : futures) {
    if (!future.wait_until(steady_deadline)) return false;
  }
  return true;
}
// True when all were done within `timeout`.
template <std::ranges::input_range Range, class Rep, class Period>
bool wait_all_for(const Range& futures, std::chrono::duration<Rep, Period> timeout) {
  return wait_all_until(futures, detail::deadline_after(timeout));
}

// Blocks until one future is done; returns its index. Throws tandem::Error on an empty range.
template <std::ranges::input_range Range>
std::size_t wait_any(const Range& futures) {
  return *detail::wait_any_by(futures, detail::Clock::time_point::max());
}
// The index of a done future, or nullopt when none was done within `timeout` (by `deadline`).
template <std::ranges::input_range Range, class Rep, class Period>
std::optional<std::size_t> wait_any_for(const Range& futures, std::chrono::duration<Rep, Period> timeout) {
  return detail::wait_any_by(futures, detail::deadline_after(timeout));
}
template <std::ranges::input_range Range, class Clock, class Duration>
std::optional<std::size_t> wait_any_until(const Range& futures, std::chrono::time_point<Clock, Duration> deadline) {
  return detail::wait_any_by(futures, detail::deadline_at(deadline));
}

// When tandem::wait returns, as Python's concurrent.futures.wait(return_when=...).
enum class ReturnWhen { first_completed, first_exception, all_completed };

// What tandem::wait returns: the futures split as Python's (done, not_done) pair, each in the
// order of the input range.
template <class R>
struct DoneAndNotDone {
  std::vector<Future<R>> done;
  std::vector<Future<R>> not_done;
};

namespace detail {
template <class Range>
auto wait_by(const Range& futures, ReturnWhen when, Clock::time_point deadline) {
  using F = std::ranges::range_value_t<Range>;
  static_assert(IsFuture<F>::value, "tandem::wait takes a range of tandem::Future");
  std::vector<F> all(std::ranges::begin(futures), std::ranges::end(futures));
  // Each future reports its completion once (at once if it is done); the waiter counts them.
  auto inbox = std::make_shared<Inbox<std::size_t>>();
  for (std::size_t i = 0; i < all.size(); ++i) {
    FutureAccess::state(all[i]).on_ready([weak = std::weak_ptr(inbox), i] {
      if (const auto alive = weak.lock()) alive->push(i);
    });
  }
  std::size_t completed = 0;
  bool failed = false;
  auto satisfied = [&] {
    switch (when) {
      case ReturnWhen::first_completed:
        return completed > 0 || all.empty();
      case ReturnWhen::first_exception:
        return failed || completed == all.size();
      case ReturnWhen::all_completed:
        break;
    }
    return completed == all.size();
  };
  while (!satisfied()) {
    if (inbox->empty()) run_one_here(all);
    const std::optional<std::size_t> index = inbox->pop(deadline);
    if (!index) break;
    ++completed;
    failed = failed || FutureAccess::state(all[*index]).phase() == kError;
  }
  DoneAndNotDone<typename F::value_type> split;
  for (auto& future : all) (future.done() ? split.done : split.not_done).push_back(std::move(future));
  return split;
}
}  // namespace detail

// Waits for `futures` as Python's concurrent.futures.wait: until all are done (the default), the
// first is done, or the first ends with an exception (a cancellation is none; or all are done). The
// timed forms return when the limit comes too, with what is not done yet in not_done (as
// Python's, they do not throw).
//
//   auto [done, not_done] = tandem::wait(futures, tandem::ReturnWhen::first_exception);
template <std::ranges::input_range Range>
auto wait(const Range& futures, ReturnWhen when = ReturnWhen::all_completed) {
  return detail::wait_by(futures, when, detail::Clock::time_point::max());
}
template <std::ranges::input_range Range, class Rep, class Period>
auto wait_for(const Range& futures, std::chrono::duration<Rep, Period> timeout,
              ReturnWhen when = ReturnWhen::all_completed) {
  return detail::wait_by(futures, when, detail::deadline_after(timeout));
}
template <std::ranges::input_range Range, class Clock, class Duration>
auto wait_until(const Range& futures, std::chrono::time_point<Clock, Duration> deadline,
                ReturnWhen when = ReturnWhen::all_completed) {
  return detail::wait_by(futures, when, detail::deadline_at(deadline));
}

// The futures of a range in the order they complete, as an input range:
//
//   for (tandem::Future<int>& f : tandem::as_completed(futures)) use(f.get());
//
// A future listed more than once is yielded once (as in Python). With a timeout (or a deadline),
// iteration throws TimeoutError when the next future is not done in time (the timeout counts
// from the call, as in Python). It holds its futures only while it lives: one dropped after a timeout
// keeps no result alive.
template <class R>
class AsCompleted {
 public:
  explicit AsCompleted(const std::vector<Future<R>>& futures,
                       detail::Clock::time_point deadline = detail::Clock::time_point::max())
      : inbox_(std::make_shared<detail::Inbox<std::size_t>>()), deadline_(deadline) {
    for (const auto& future : futures) {
      const auto same = [&future](const Future<R>& kept) { return kept.id() == future.id(); };
      if (std::none_of(futures_.begin(), futures_.end(), same)) futures_.push_back(future);
    }
    remaining_ = futures_.size();
    for (std::size_t i = 0; i < futures_.size(); ++i) {
      detail::FutureAccess::state(futures_[i]).on_ready([inbox = std::weak_ptr(inbox_), i] {
        if (const auto alive = inbox.lock()) alive->push(i);
      });
    }
  }

  // Blocks for the next completed future; nullopt when all were handed out.
  std::optional<Future<R>> next() {
    if (remaining_ == 0) return std::nullopt;
    if (inbox_->empty()) detail::run_one_here(futures_);
    std::optional<std::size_t> done = inbox_->pop(deadline_);
    if (!done) detail::throw_timeout("as_completed: the next future was not done in time");
    --remaining_;
    return futures_[*done];
  }
  std::size_t remaining() const noexcept { return remaining_; }

  using iterator = detail::NextIterator<AsCompleted, Future<R>>;
  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() { return {}; }

 private:
  std::shared_ptr<detail::Inbox<std::size_t>> inbox_;
  std::vector<Future<R>> futures_;
  std::size_t remaining_ = 0;
  detail::Clock::time_point deadline_;
};

namespace detail {
template <class Range>
auto as_completed_by(const Range& futures, Clock::time_point deadline) {
  using F = std::ranges::range_value_t<Range>;
  static_assert(IsFuture<F>::value, "as_completed takes a range of tandem::Future");
  return AsCompleted<typename F::value_type>(std::vector<F>(std::ranges::begin(futures), std::ranges::end(futures)),
                                             deadline);
}
}  // namespace detail

template <std::ranges::input_range Range>
auto as_completed(const Range& futures) {
  return detail::as_completed_by(futures, detail::Clock::time_point::max());
}
template <std::ranges::input_range Range, class Rep, class Period>
auto as_completed(const Range& futures, std::chrono::duration<Rep, Period> timeout) {
  return detail::as_completed_by(futures, detail::deadline_after(timeout));
}
template <std::ranges::input_range Range, class Clock, class Duration>
auto as_completed(const Range& futures, std::chrono::time_point<Clock, Duration> deadline) {
  return detail::as_completed_by(futures, detail::deadline_at(deadline));
}

}  // namespace tandem
