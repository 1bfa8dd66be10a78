// How every blocking call in tandem waits: spin briefly, then sleep on a futex; and on a pool
// worker, run queued tasks instead of sleeping.
#pragma once

#include <algorithm>
#include <chrono>

#include "tandem/detail/futex.hpp"
#include "tandem/detail/tracking.hpp"

namespace tandem::detail {

// A worker thread that blocks on a future runs other queued tasks meanwhile, so nested and
// recursive submission cannot deadlock a pool. The pool installs its helper on each worker.
class Helper {
 public:
  // Runs one queued task if there is one; false when there was nothing to run.
  virtual bool help_one() = 0;

 protected:
  ~Helper() = default;
};
inline thread_local Helper* this_thread_helper = nullptr;

// Waits until `ready()` holds or `deadline` passes; returns ready(). Spins for kSpinBudget, then
// calls `sleep(deadline)` which must block until a wake-up or the deadline. On a pool worker, it
// runs queued tasks instead of sleeping, and naps in short, growing slices when there are none.
template <class Ready, class Sleep>
bool block_until(Ready&& ready, Sleep&& sleep, Clock::time_point deadline) {
  if (ready()) return true;
  if (Helper* helper = this_thread_helper) {
    auto nap = std::chrono::microseconds(20);
    while (!ready()) {
      bool helped;
      {
        const WaitSuspension running;  // running a task is not waiting, for the diagnostics
        helped = helper->help_one();
      }
      if (helped) {
        nap = std::chrono::microseconds(20);
        continue;
      }
      const auto now = Clock::now();
      if (now >= deadline) return ready();
      sleep(std::min(deadline, now + nap));
      nap = std::min(nap * 2, std::chrono::microseconds(2000));
    }
    return true;
  }
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
