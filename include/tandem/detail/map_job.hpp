// The machinery behind ThreadPool::map and imap: a chunked index space that a few runner tasks
// drain together (map), and a bounded window of chunk futures read lazily (imap).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <vector>

#include "tandem/detail/inbox.hpp"
#include "tandem/detail/scheduler.hpp"
#include "tandem/future.hpp"

namespace tandem::detail {

// map: `chunks` chunks claimed by atomic counter, by however many runners get to run. Every
// claimed chunk below `chunks` is counted done (run, or skipped after a failure), so the caller
// waits for exactly that count and never for a runner still sitting in a queue.
class MapJob {
 public:
  explicit MapJob(std::size_t chunks) : chunks_(chunks) {}
  MapJob(const MapJob&) = delete;
  MapJob& operator=(const MapJob&) = delete;
  virtual ~MapJob() = default;

  // Claims and runs chunks until none is left, or (for a caller with a deadline) time is up.
  void work(Clock::time_point deadline = Clock::time_point::max()) noexcept {
    for (;;) {
      if (deadline != Clock::time_point::max() && Clock::now() >= deadline) return;
      const std::size_t chunk = next_.fetch_add(1, std::memory_order_relaxed);
      if (chunk >= chunks_) return;
      if (!failed_.load(std::memory_order_relaxed)) {
        try {
          run_chunk(chunk);
        } catch (...) {
          if (!failed_.exchange(true)) error_ = std::current_exception();
        }
      }
      if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == chunks_) {
        finished_.store(1, std::memory_order_release);
        futex_wake_all(finished_);
      }
    }
  }

  // Blocks until every chunk is done or `deadline` passes, then rethrows the first failure.
  // On timeout, the chunks not yet started are skipped (claimed here, so nobody waits for a
  // runner still queued behind other work), the ones running are waited for, since they use the
  // caller's data, and the result is false.
  bool wait_until(Clock::time_point deadline) {
    const bool in_time = block_until([this] { return finished_.load(std::memory_order_acquire) != 0; },
                                     [this](Clock::time_point d) { futex_wait(finished_, 0, d); }, deadline);
    if (!in_time) {
      failed_.store(true);
      work();
      block_until([this] { return finished_.load(std::memory_order_acquire) != 0; },
                  [this](Clock::time_point d) { futex_wait(finished_, 0, d); }, Clock::time_point::max());
    }
    if (error_) std::rethrow_exception(error_);
    return in_time;
  }

 protected:
  virtual void run_chunk(std::size_t chunk) = 0;

 private:
  const std::size_t chunks_;
  std::atomic<std::size_t> next_{0};
  std::atomic<std::size_t> done_{0};
  std::atomic<bool> failed_{false};
  std::atomic<std::uint32_t> finished_{0};
  std::exception_ptr error_;
};

template <class Body>
class MapJobFor final : public MapJob {
 public:
  MapJobFor(std::size_t chunks, Body body) : MapJob(chunks), body_(std::move(body)) {}

 private:
  void run_chunk(std::size_t chunk) override { body_(chunk); }
  Body body_;
};

class MapRunner final : public Runnable {
 public:
  explicit MapRunner(std::shared_ptr<MapJob> job) : job_(std::move(job)) {}
  void run() noexcept override {
    std::unique_ptr<MapRunner> self(this);
    job_->work();
  }
  void discard() noexcept override { std::unique_ptr<MapRunner> self(this); }

 private:
  std::shared_ptr<MapJob> job_;
};

// Runs `body(chunk)` for chunk in [0, chunks) on the pool and waits (see MapJob::wait_until).
// The caller takes part as one of the pool's `workers` threads, like parallel_for's caller: it
// starts at once, while a sleeping worker takes tens of microseconds to wake, and the map still
// keeps exactly `workers` threads busy. Not in pools with an initializer (tasks may rely on
// per-worker state) nor in one-worker pools (often used to confine work to one thread).
template <class Body>
bool run_chunks(Scheduler& scheduler, std::size_t chunks, Clock::time_point deadline, Body body) {
  auto job = std::make_shared<MapJobFor<Body>>(chunks, std::move(body));
  const std::size_t workers = worker_count(scheduler);
  const bool caller_helps = on_worker_of(scheduler) || (!has_initializer(scheduler) && workers > 1);
  const std::size_t runners = caller_helps ? std::min(workers, chunks) - 1 : std::min(workers, chunks);
  for (std::size_t i = 0; i < runners; ++i) {
    auto runner = std::make_unique<MapRunner>(job);
    post(scheduler, runner.get());
    runner.release();
  }
  if (caller_helps) job->work(deadline);
  return job->wait_until(deadline);
}

}  // namespace tandem::detail
