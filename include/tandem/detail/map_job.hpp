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

  // Claims and runs chunks until none is left (or, with a deadline, until it has passed: checked
  // between chunks).
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

  // Blocks until every chunk is done, then rethrows the first failure.
  void wait() {
    wait_for_chunks(Clock::time_point::max());
    if (error_) std::rethrow_exception(error_);
  }
  // Blocks until every chunk is done (true, or the first failure rethrown) or `deadline` passes
  // (false). Then the chunks not yet started are skipped: claimed here, so that nobody waits for a
  // runner still queued behind other work. The ones running go on: their bodies must own what
  // they use (a timed map copies its input, function and output into the job).
  bool wait_until(Clock::time_point deadline) {
    if (!wait_for_chunks(deadline)) {
      failed_.store(true);
      work();
      return false;
    }
    if (error_) std::rethrow_exception(error_);
    return true;
  }

 protected:
  virtual void run_chunk(std::size_t chunk) = 0;

 private:
  bool wait_for_chunks(Clock::time_point deadline) {
    return block_until([this] { return finished_.load(std::memory_order_acquire) != 0; },
                       [this](Clock::time_point d) { futex_wait(finished_, 0, d); }, deadline);
  }

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

inline void post_runners(Scheduler& scheduler, const std::shared_ptr<MapJob>& job, std::size_t runners) {
  for (std::size_t i = 0; i < runners; ++i) {
    auto runner = std::make_unique<MapRunner>(job);
    post(scheduler, runner.get());
    runner.release();
  }
}

// Runs `body(chunk)` for chunk in [0, chunks) on the pool and waits for them all (see
// MapJob::wait). The caller takes part as one of the pool's `workers` threads, like
// parallel_for's caller: it starts at once, while a sleeping worker takes tens of microseconds to
// wake, and the map still keeps exactly `workers` threads busy. Not in pools with an initializer
// (tasks may rely on per-worker state) nor in one-worker pools (often used to confine work to
// one thread).
template <class Body>
void run_chunks(Scheduler& scheduler, std::size_t chunks, Body body) {
  auto job = std::make_shared<MapJobFor<Body>>(chunks, std::move(body));
  const std::size_t workers = worker_count(scheduler);
  const bool caller_helps = on_worker_of(scheduler) || (!has_initializer(scheduler) && workers > 1);
  post_runners(scheduler, job, caller_helps ? std::min(workers, chunks) - 1 : std::min(workers, chunks));
  if (caller_helps) job->work();
  job->wait();
}

// Like run_chunks, but returns false at `deadline` if not every chunk is done, without waiting
// for the chunks still running: `body` must own everything it touches. A caller from outside
// the pool runs no chunk itself (it could not return at the deadline from inside one); a caller
// on one of the pool's workers does, between deadline checks, since its own runners may be
// queued behind it (then the deadline holds to within one chunk).
template <class Body>
bool run_chunks_until(Scheduler& scheduler, std::size_t chunks, Clock::time_point deadline, Body body) {
  auto job = std::make_shared<MapJobFor<Body>>(chunks, std::move(body));
  post_runners(scheduler, job, std::min(worker_count(scheduler), chunks));
  if (on_worker_of(scheduler)) job->work(deadline);
  return job->wait_until(deadline);
}

}  // namespace tandem::detail
