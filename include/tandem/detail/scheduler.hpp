// The non-template core of ThreadPool: worker threads, their work-stealing deques, the
// injection queue for submissions from outside, and the spin-then-futex idling. Defined in
// src/pool/thread_pool.cpp; the templates in thread_pool.hpp only build Runnables and post them.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "tandem/detail/future_state.hpp"
#include "tandem/pool_stats.hpp"

namespace tandem::detail {

class Scheduler;

struct SchedulerDeleter {
  void operator()(Scheduler* scheduler) const noexcept;
};
using SchedulerPtr = std::unique_ptr<Scheduler, SchedulerDeleter>;

// Starts `workers` threads; each runs `initializer` first. Throws what an initializer threw.
SchedulerPtr make_scheduler(std::size_t workers, const std::string& name, const std::function<void()>& initializer);

// Queues `task` (taking the queue's reference) or throws PoolClosed without touching it.
// From one of the pool's own workers, tasks go to that worker's deque and are accepted while
// the pool drains after shutdown(), so running tasks can still fan out.
void post(Scheduler& scheduler, Runnable* task);

std::size_t worker_count(const Scheduler& scheduler) noexcept;
bool is_closed(const Scheduler& scheduler) noexcept;
// True on a worker thread of `scheduler`.
bool on_worker_of(const Scheduler& scheduler) noexcept;
bool has_initializer(const Scheduler& scheduler) noexcept;
PoolStats stats(const Scheduler& scheduler) noexcept;
void shutdown(Scheduler& scheduler, bool wait, bool cancel_pending);
// Closes, then waits for the workers until `deadline`; false if some are still running then.
bool shutdown_until(Scheduler& scheduler, Clock::time_point deadline, bool cancel_pending);

}  // namespace tandem::detail
