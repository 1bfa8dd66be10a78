// Event: a flag that agents wait for, Python's threading.Event and multiprocessing.Event in one
// type.
//
//   tandem::Event ready;
//   tandem::Process p([](tandem::Event e) { load(); e.set(); }, ready);  p.start();
//   if (!ready.wait_for(5s)) give_up();
//
// An Event is a handle: copies are the same flag, passed to other agents like a Lock.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "tandem/detail/traveller.hpp"
#include "tandem/detail/deadline.hpp"
#include "tandem/detail/futex.hpp"
#include "tandem/detail/shared_state.hpp"

namespace tandem {

namespace detail {
struct EventState {
  static constexpr std::uint32_t kTag = 0x45564e54;  // "EVNT"
  std::atomic<std::uint32_t> flag{0};
  // Bumped by every set(): a waiter present at a set() returns even if clear() follows at once.
  std::atomic<std::uint32_t> sets{0};
};
}  // namespace detail

class Event {
 public:
  Event() : state_(detail::SharedState<detail::EventState>::create(0)) {}

  // Sets the flag and wakes every waiter.
  void set();
  void clear() noexcept { state_->flag.store(0, std::memory_order_release); }
  bool is_set() const noexcept { return state_->flag.load(std::memory_order_acquire) != 0; }
  // Blocks until the flag is set.
  void wait() { wait_by(detail::Clock::time_point::max()); }
  // False if the flag was still clear after `timeout` (by `deadline`).
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> timeout) {
    return wait_by(detail::deadline_after(timeout));
  }
  template <class Clock, class Duration>
  bool wait_until(std::chrono::time_point<Clock, Duration> deadline) {
    return wait_by(detail::deadline_at(deadline));
  }

 private:
  friend struct detail::HandleAccess;
  using SharedStateType = detail::SharedState<detail::EventState>;
  explicit Event(SharedStateType state) : state_(std::move(state)) {}
  bool wait_by(detail::Clock::time_point deadline);

  SharedStateType state_;
};

}  // namespace tandem
