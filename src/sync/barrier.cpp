#include "tandem/barrier.hpp"

#include <algorithm>
#include <string>

#include "tandem/detail/wait.hpp"
#include "tandem/error.hpp"

namespace tandem {
namespace {

// With the state's mutex held: ends `round` as broken, if it is still the current round.
void break_round(detail::BarrierState& state, std::uint32_t round) {
  if (state.generation.load(std::memory_order_relaxed) != round) return;
  state.broken = 1;
  state.last_broken_round = round;
  state.arrived = 0;
  state.generation.fetch_add(1, std::memory_order_seq_cst);
  detail::futex_wake_all(state.generation);
}

// With the state's mutex held: this process's entry, made if missing (nullptr when the table is
// full: the process then goes unwatched).
detail::BarrierState::Participant* participant_entry(detail::BarrierState& state) {
  const auto self = detail::ProcessIdentity::self();
  auto* slot = std::find_if(std::begin(state.participants), std::end(state.participants),
                            [&](const auto& p) { return p.process == self; });
  if (slot != std::end(state.participants)) return slot;
  slot = std::find_if(std::begin(state.participants), std::end(state.participants),
                      [](const auto& p) { return p.process.pid == 0; });
  if (slot == std::end(state.participants)) return nullptr;
  *slot = {self, detail::BarrierState::kNever};
  return slot;
}

}  // namespace

void Barrier::enroll() {
  detail::BookkeepingGuard guard(state_->mutex);
  participant_entry(*state_);
}

Barrier::Barrier(std::uint32_t parties, Action action, std::chrono::nanoseconds timeout)
    : state_([&] {
        if (parties == 0) throw Error("Barrier: at least one party");
        if (timeout.count() < 0) throw Error("Barrier: a negative timeout");
        return detail::SharedState<detail::BarrierState>::create(0, parties, timeout.count());
      }()),
      action_(action) {
  enroll();
}

std::uint32_t Barrier::wait() {
  const auto timeout = std::chrono::nanoseconds(state_->timeout_ns);
  return wait_by(timeout.count() == 0 ? detail::Clock::time_point::max() : detail::deadline_after(timeout));
}

std::uint32_t Barrier::wait_by(detail::Clock::time_point deadline) {
  detail::BarrierState& state = *state_;
  std::uint32_t round = 0, index = 0;
  {
    detail::BookkeepingGuard guard(state.mutex);
    if (state.broken) throw BrokenBarrier("Barrier: broken (reset() makes it usable again)");
    round = state.generation.load(std::memory_order_relaxed);
    auto* entry = participant_entry(state);
    if (entry != nullptr) entry->last_round = round;
    index = state.arrived++;
    if (state.arrived == state.parties) {
      if (action_ != nullptr) run_action(entry, round);
      state.arrived = 0;
      state.generation.fetch_add(1, std::memory_order_seq_cst);
      detail::futex_wake_all(state.generation);
      return index;
    }
  }
  auto round_over = [&] { return state.generation.load(std::memory_order_acquire) != round; };
  auto sleep = [&](detail::Clock::time_point until) {
    const bool woken = detail::futex_wait(state.generation, round, std::min(until, detail::Clock::now() + detail::kLivenessCheckEvery));
    if (!woken && a_participant_died()) {
      detail::BookkeepingGuard guard(state.mutex);
      break_round(state, round);
    }
  };
  const bool over = detail::block_until(round_over, sleep, deadline);
  detail::BookkeepingGuard guard(state.mutex);
  const bool tripped = state.generation.load(std::memory_order_relaxed) != round && state.last_broken_round != round;
  if (!over && !tripped) {  // a trip that came just after the deadline still counts
    break_round(state, round);
    throw BrokenBarrier("Barrier: the wait timed out, which breaks the barrier");
  }
  if (state.last_broken_round == round) {
    throw BrokenBarrier("Barrier: broken while waiting (a participant died, a wait timed out, or abort/reset)");
  }
  return index;
}

// Under the mutex, as Python runs it under its condition's lock: nobody arrives for the next
// round before the action is done. While it runs, this process counts as not arrived, so that
// its death in the action breaks the round for the waiters (the mutex, robust, is freed by it).
void Barrier::run_action(detail::BarrierState::Participant* entry, std::uint32_t round) {
  detail::BarrierState& state = *state_;
  if (entry != nullptr) entry->last_round = round - 1;
  try {
    action_();
  } catch (...) {
    if (entry != nullptr) entry->last_round = round;
    break_round(state, round);
    throw;
  }
  if (entry != nullptr) entry->last_round = round;
}

bool Barrier::a_participant_died() {
  detail::BarrierState& state = *state_;
  detail::BookkeepingGuard guard(state.mutex);
  const std::uint32_t round = state.generation.load(std::memory_order_relaxed);
  bool died = false;
  for (auto& participant : state.participants) {
    if (participant.process.pid == 0 || participant.process.alive()) continue;
    if (participant.last_round != round) died = true;  // gone without arriving in this round
    participant = {};
  }
  return died;
}

void Barrier::abort() {
  detail::BookkeepingGuard guard(state_->mutex);
  break_round(*state_, state_->generation.load(std::memory_order_relaxed));
}

void Barrier::reset() {
  detail::BookkeepingGuard guard(state_->mutex);
  if (state_->arrived != 0) break_round(*state_, state_->generation.load(std::memory_order_relaxed));
  state_->broken = 0;
  state_->arrived = 0;
}

std::uint32_t Barrier::n_waiting() {
  detail::BookkeepingGuard guard(state_->mutex);
  return state_->arrived;
}

bool Barrier::broken() {
  detail::BookkeepingGuard guard(state_->mutex);
  return state_->broken != 0;
}

}  // namespace tandem
