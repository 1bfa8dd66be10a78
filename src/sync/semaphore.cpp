#include "tandem/semaphore.hpp"

#include <algorithm>
#include <string>

#include "tandem/detail/wait.hpp"
#include "tandem/error.hpp"

namespace tandem {

using namespace detail;

template <bool kBounded>
bool BasicSemaphore<kBounded>::try_take() noexcept {
  std::uint32_t count = state_->count.load(std::memory_order_relaxed);
  while (count != 0) {
    if (state_->count.compare_exchange_weak(count, count - 1, std::memory_order_acquire)) return true;
  }
  return false;
}

template <bool kBounded>
void BasicSemaphore<kBounded>::record_holding(int delta) {
  SemaphoreState& state = *state_;
  const ProcessIdentity self = ProcessIdentity::self();
  BookkeepingGuard guard(state.holders_mutex);
  auto* free_slot = static_cast<SemaphoreState::Holder*>(nullptr);
  for (auto& holder : state.holders) {
    if (holder.units != 0 && holder.process == self) {
      const auto units = static_cast<std::int64_t>(holder.units) + delta;
      holder.units = static_cast<std::uint32_t>(std::max<std::int64_t>(units, 0));
      return;
    }
    if (holder.units == 0 && free_slot == nullptr) free_slot = &holder;
  }
  if (delta < 0) return;  // released by a process that took nothing: it signals for another
  if (free_slot == nullptr) {
    throw Error("BoundedSemaphore: more than " + std::to_string(SemaphoreState::kHolderSlots) +
                " processes hold it at once");
  }
  *free_slot = {self, static_cast<std::uint32_t>(delta)};
}

template <bool kBounded>
std::uint32_t BasicSemaphore<kBounded>::reclaim_from_dead_holders() {
  SemaphoreState& state = *state_;
  const std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
  std::int64_t last = state.last_liveness_check.load(std::memory_order_relaxed);
  const std::int64_t interval = std::chrono::nanoseconds(kLivenessCheckEvery).count();
  if (now - last < interval || !state.last_liveness_check.compare_exchange_strong(last, now)) return 0;
  std::uint32_t reclaimed = 0;
  BookkeepingGuard guard(state.holders_mutex);
  for (auto& holder : state.holders) {
    if (holder.units != 0 && !holder.process.alive()) {
      reclaimed += holder.units;
      holder = {};
    }
  }
  if (reclaimed != 0) {
    state.reclaimed_unreported.fetch_add(reclaimed, std::memory_order_relaxed);
    const std::uint32_t count = state.count.load(std::memory_order_relaxed);
    state.count.fetch_add(std::min(reclaimed, state.bound - std::min(count, state.bound)), std::memory_order_seq_cst);
    futex_wake_all(state.count);
  }
  return reclaimed;
}

template <bool kBounded>
bool BasicSemaphore<kBounded>::acquire_by(Clock::time_point deadline) {
  SemaphoreState& state = *state_;
  auto sleep = [&](Clock::time_point until) {
    state.waiters.fetch_add(1, std::memory_order_seq_cst);
    const auto nap_end = state.bounded ? std::min(until, Clock::now() + kLivenessCheckEvery) : until;
    const bool woken = futex_wait(state.count, 0, nap_end);
    state.waiters.fetch_sub(1, std::memory_order_relaxed);
    if (state.bounded && !woken) reclaim_from_dead_holders();
  };
  if (!block_until([this] { return try_take(); }, sleep, deadline)) {
    // A poll (try_acquire) never naps: look for dead holders here too.
    if (!state.bounded || reclaim_from_dead_holders() == 0 || !try_take()) return false;
  }
  if (!state.bounded) return true;
  try {
    record_holding(1);
  } catch (...) {  // not recorded: not taken
    state.count.fetch_add(1, std::memory_order_seq_cst);
    futex_wake(state.count, 1);
    throw;
  }
  std::uint32_t unreported = state.reclaimed_unreported.load(std::memory_order_relaxed);
  while (unreported != 0) {
    if (state.reclaimed_unreported.compare_exchange_weak(unreported, unreported - 1, std::memory_order_relaxed)) {
      throw OwnerDied(
          "BoundedSemaphore: the unit acquired was held by a process that died; the caller holds it now");
    }
  }
  return true;
}

template <bool kBounded>
void BasicSemaphore<kBounded>::release(std::uint32_t n) {
  SemaphoreState& state = *state_;
  if (state.bounded) {
    std::uint32_t count = state.count.load(std::memory_order_relaxed);
    do {
      if (count + n > state.bound) throw Error("BoundedSemaphore::release: released more often than acquired");
    } while (!state.count.compare_exchange_weak(count, count + n, std::memory_order_seq_cst));
    record_holding(-static_cast<int>(n));
  } else {
    state.count.fetch_add(n, std::memory_order_seq_cst);
  }
  if (state.waiters.load(std::memory_order_seq_cst) != 0) futex_wake(state.count, static_cast<int>(n));
}

template class BasicSemaphore<false>;
template class BasicSemaphore<true>;

}  // namespace tandem
