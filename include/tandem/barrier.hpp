// Barrier: a meeting point for a fixed number of agents, threads or processes (Python's
// threading.Barrier and multiprocessing.Barrier in one type).
//
//   tandem::Barrier start(3);
//   // in each of three agents:  start.wait();   // returns once all three have arrived
//
// wait() returns a distinct index in [0, parties) per arrival (parties - 1 for the last). With
// an action (Python's action=), the last to arrive runs it before any waiter is released; if it
// throws, that agent gets its exception and the others BrokenBarrier. The barrier then resets
// itself for the next round. A barrier that cannot trip breaks instead of
// leaving its waiters hanging: each of them gets tandem::BrokenBarrier when
// - a participant process ends (a crash, SIGKILL, or a normal exit) without having arrived in
//   the round the others wait in. Every process that holds a copy of the barrier counts as a
//   participant: it enrolls when it receives one (as an argument, by inheritance, or by copy);
// - a wait times out (the barrier's own timeout, or wait_for's);
// - abort() is called, or reset() while agents wait.
// A broken barrier stays broken until reset(). (Threads are not watched this way: a thread that
// ends early leaves the others to their timeout.)
//
// A Barrier is a handle: copies are the same barrier, passed to other agents like a Lock. The
// action travels in the handle (as a task's function does, by its offset in the program), not
// in the shared memory: so the action an agent runs is the one its handle came with, and no
// participant can change it for the others by writing to the barrier's memory.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "tandem/detail/code_offset.hpp"
#include "tandem/detail/traveller.hpp"
#include "tandem/detail/deadline.hpp"
#include "tandem/detail/futex.hpp"
#include "tandem/detail/process_identity.hpp"
#include "tandem/detail/robust_mutex.hpp"
#include "tandem/detail/shared_state.hpp"

namespace tandem {

namespace detail {
struct BarrierState {
  static constexpr std::uint32_t kTag = 0x42415252;  // "BARR"
  static constexpr int kParticipantSlots = 64;

  BarrierState(std::uint32_t count, std::int64_t timeout) : parties(count), timeout_ns(timeout), mutex(RobustMutex::Kind::plain) {}

  const std::uint32_t parties;
  const std::int64_t timeout_ns;  // 0: none
  RobustMutex mutex;
  std::uint32_t arrived = 0;
  std::uint32_t broken = 0;
  std::atomic<std::uint32_t> generation{0};  // the round; bumped when it ends, by trip or break
  std::uint32_t last_broken_round = UINT32_MAX;
  // Processes that hold the barrier, with the last round they arrived in (kNever before their
  // first): one that is dead without having arrived in the current round breaks it.
  static constexpr std::uint32_t kNever = UINT32_MAX;
  struct Participant {
    ProcessIdentity process;
    std::uint32_t last_round;
  } participants[kParticipantSlots] = {};
};
}  // namespace detail

class Barrier {
 public:
  // What the last agent to arrive runs before the others are released: a function, or a lambda
  // without captures (it travels to other processes as a task's function does).
  using Action = void (*)();

  // `parties` >= 1; `timeout` (zero: none) applies to every wait().
  explicit Barrier(std::uint32_t parties, std::chrono::nanoseconds timeout = std::chrono::nanoseconds::zero())
      : Barrier(parties, nullptr, timeout) {}
  Barrier(std::uint32_t parties, Action action, std::chrono::nanoseconds timeout = std::chrono::nanoseconds::zero());
  // A copy enrolls the process that makes it (see above).
  Barrier(const Barrier& other) : state_(other.state_), action_(other.action_) { enroll(); }
  Barrier(Barrier&& other) : state_(std::move(other.state_)), action_(other.action_) { enroll(); }
  Barrier& operator=(const Barrier& other) {
    state_ = other.state_;
    action_ = other.action_;
    enroll();
    return *this;
  }
  Barrier& operator=(Barrier&& other) {
    state_ = std::move(other.state_);
    action_ = other.action_;
    enroll();
    return *this;
  }

  // Blocks until all parties have arrived; BrokenBarrier as described above. The timed forms
  // do not return false: a timeout breaks the barrier for every waiter (as Python's does), and
  // each of them gets BrokenBarrier saying so.
  std::uint32_t wait();
  template <class Rep, class Period>
  std::uint32_t wait_for(std::chrono::duration<Rep, Period> timeout) {
    return wait_by(detail::deadline_after(timeout));
  }
  template <class Clock, class Duration>
  std::uint32_t wait_until(std::chrono::time_point<Clock, Duration> deadline) {
    return wait_by(detail::deadline_at(deadline));
  }
  // Breaks the barrier: current and later waiters get BrokenBarrier until reset().
  void abort();
  // Back to its initial state; agents waiting now get BrokenBarrier.
  void reset();

  std::uint32_t parties() const noexcept { return state_->parties; }
  std::uint32_t n_waiting();
  bool broken();

 private:
  friend struct detail::Traveller<Barrier>;
  using SharedStateType = detail::SharedState<detail::BarrierState>;
  Barrier(SharedStateType state, Action action) : state_(std::move(state)), action_(action) { enroll(); }
  void enroll();
  std::uint32_t wait_by(detail::Clock::time_point deadline);
  // The last arrival's part, with the state's mutex held.
  void run_action(detail::BarrierState::Participant* entry, std::uint32_t round);
  bool a_participant_died();

  SharedStateType state_;
  Action action_ = nullptr;
};

namespace detail {
template <>
struct Traveller<Barrier> {
  static void encode(ByteWriter& out, const Barrier& barrier) {
    barrier.state_.encode(out);
    out.write_raw(static_cast<std::uint8_t>(barrier.action_ != nullptr));
    if (barrier.action_ != nullptr) out.write_raw(code_offset(reinterpret_cast<const void*>(barrier.action_)));
  }
  static Barrier decode(ByteReader& in) {
    auto state = Barrier::SharedStateType::decode(in);
    if (state->parties == 0) throw_malformed("a Barrier handle with no parties");
    const auto has_action = in.read_raw<std::uint8_t>();
    if (has_action > 1) throw_malformed("a Barrier handle whose action flag is neither 0 nor 1");
    const Barrier::Action action = has_action != 0 ? function_at<Barrier::Action>(in.read_raw<std::int64_t>()) : nullptr;
    return Barrier(std::move(state), action);
  }
};
}  // namespace detail

}  // namespace tandem
