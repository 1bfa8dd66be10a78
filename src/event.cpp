#include "tandem/event.hpp"

#include "tandem/detail/wait.hpp"

namespace tandem {

void Event::set() {
  if (state_->flag.exchange(1, std::memory_order_acq_rel) == 0) detail::futex_wake_all(state_->flag);
}

bool Event::wait_until(detail::Clock::time_point deadline) {
  return detail::block_until([this] { return is_set(); },
                             [this](detail::Clock::time_point until) { detail::futex_wait(state_->flag, 0, until); },
                             deadline);
}

}  // namespace tandem
