#include "tandem/event.hpp"

#include "tandem/detail/wait.hpp"

namespace tandem {

void Event::set() {
  state_->flag.store(1, std::memory_order_release);
  state_->sets.fetch_add(1, std::memory_order_acq_rel);
  detail::futex_wake_all(state_->sets);
}

bool Event::wait_by(detail::Clock::time_point deadline) {
  const std::uint32_t sets = state_->sets.load(std::memory_order_acquire);
  return detail::block_until(
      [&] { return is_set() || state_->sets.load(std::memory_order_acquire) != sets; },
      [&](detail::Clock::time_point until) { detail::futex_wait(state_->sets, sets, until); }, deadline);
}

}  // namespace tandem
