// How every blocking call in tandem waits: spin briefly, then sleep on a futex.
//
// A waiter never runs unrelated work meanwhile, not even on a pool worker: a task queued behind a
// blocked one could block on top of it, on the same stack, and never let it resume. The one
// wait that helps is a pool worker's wait on a future of its own pool, which runs that very task
// if nobody has started it (see StateBase::run_here).
#pragma once

#include <algorithm>
#include <chrono>

#include "tandem/detail/futex.hpp"
#include "tandem/detail/tracking.hpp"

namespace tandem::detail {

// Waits until `ready()` holds or `deadline` passes; returns ready(). Spins for kSpinBudget, then
// calls `sleep(deadline)`, which must block until a wake-up or the deadline.
template <class Ready, class Sleep>
bool block_until(Ready&& ready, Sleep&& sleep, Clock::time_point deadline) {
  if (ready()) return true;
  const auto spin_end = Clock::now() + kSpinBudget;
  while (!ready()) {
    const auto now = Clock::now();
    if (now >= deadline) return ready();
    if (now < spin_end) {
      for (int i = 0; i < 32; ++i) cpu_relax();
      continue;
    }
    sleep(deadline);
  }
  return true;
}

}  // namespace tandem::detail
