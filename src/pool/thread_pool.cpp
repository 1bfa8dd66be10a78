#include "tandem/thread_pool.hpp"

#include "pool/pool_watch.hpp"
#include "pool/task_queues.hpp"

#include <pthread.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <deque>
#include <latch>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace tandem {
namespace detail {
namespace {

struct WorkerSlot {
  TaskQueue queue;
  std::thread thread;
  // Written by the slot's worker only, read by the diagnostics' stall watch.
  std::atomic<std::uint32_t> busy{0};  // tasks it is inside (more than one while it helps)
  std::atomic<std::uint64_t> completed{0};
};

}  // namespace

// How long an idle worker looks for work before it sleeps. Longer than a waiter's spin: a pool
// that is fed in bursts (map after map, a request loop) would otherwise pay a ~50 us futex
// wake-up at the start of every burst. Well under the 1 ms after which an idle pool must use no
// CPU; the spin yields the core every few dozen probes, so a submitter sharing it is not slowed.
constexpr std::chrono::microseconds kWorkerSpin{300};

class Scheduler final {
 public:
  Scheduler(std::size_t workers, const std::string& name, const std::function<void()>& initializer)
      : slots_(workers), running_workers_(static_cast<std::uint32_t>(workers)), has_initializer_(static_cast<bool>(initializer)) {
    if (workers == 0) throw Error("ThreadPool: the pool needs at least one worker (workers = 0)");
    std::latch started(static_cast<std::ptrdiff_t>(workers));
    std::mutex failure_mutex;
    std::exception_ptr failure;
    try {
      for (std::size_t i = 0; i < workers; ++i) {
        slots_[i].thread = std::thread([&, i] {
          name_thread(name, i);
          bool ok = true;
          if (initializer) {
            try {
              initializer();
            } catch (...) {
              std::lock_guard lock(failure_mutex);
              if (!failure) failure = std::current_exception();
              ok = false;
            }
          }
          started.count_down();
          if (ok) worker_loop(i);
          if (running_workers_.fetch_sub(1, std::memory_order_acq_rel) == 1) futex_wake_all(running_workers_);
        });
      }
    } catch (...) {
      stop(true, true);  // the threads that did start refer to this frame: join them first
      throw;
    }
    started.wait();
    if (failure) {
      stop(true, true);
      std::rethrow_exception(failure);
    }
  }

  ~Scheduler() { stop(true, false); }

  // The pool's owner went away on one of its workers (a task destroyed its own pool), which
  // cannot join itself: the pool closes and drains what was queued, and is joined and freed
  // later by another thread (DetachedPools), at the latest when the program exits.
  void detach() { stop(false, false); }
  bool finished() const noexcept { return running_workers_.load(std::memory_order_acquire) == 0; }

  void post(Runnable* task) {
    if (current_ == this) {
      // A running task fanning out: keep it local (LIFO) for cache warmth; thieves take the rest.
      if (cancelled_.load(std::memory_order_acquire)) throw PoolClosed("ThreadPool: the pool was shut down");
      slots_[current_index_].queue.push_back(task);
    } else {
      if (!injection_.push(task)) throw PoolClosed("ThreadPool: submit after shutdown");
    }
    if (sleepers_.load(std::memory_order_seq_cst) > 0) wake(1);
  }

  void stop(bool wait, bool cancel_pending) {
    if (wait && current_ == this) {
      throw Error("ThreadPool::shutdown(wait=true) from one of the pool's own tasks would wait forever");
    }
    closed_.store(true, std::memory_order_seq_cst);
    injection_.close();
    if (cancel_pending) {
      cancelled_.store(true, std::memory_order_seq_cst);
      for (Runnable* task : injection_.take_all()) task->discard();
      for (auto& slot : slots_) discard_all(slot.queue);
    }
    stopping_.store(true, std::memory_order_seq_cst);
    wake(static_cast<int>(slots_.size()));
    if (!wait) return;
    std::lock_guard lock(join_mutex_);
    for (auto& slot : slots_) {
      if (slot.thread.joinable()) slot.thread.join();
    }
  }

  bool stop_until(Clock::time_point deadline, bool cancel_pending) {
    stop(false, cancel_pending);
    const bool all_exited = block_until([this] { return running_workers_.load(std::memory_order_acquire) == 0; },
                                        [this](Clock::time_point d) {
                                          const std::uint32_t running = running_workers_.load(std::memory_order_acquire);
                                          if (running != 0) futex_wait(running_workers_, running, d);
                                        },
                                        deadline);
    if (all_exited) stop(true, false);  // only joins now: every worker has left its loop
    return all_exited;
  }

  std::size_t size() const noexcept { return slots_.size(); }
  bool closed() const noexcept { return closed_.load(std::memory_order_acquire); }
  bool is_current() const noexcept { return current_ == this; }
  bool has_initializer() const noexcept { return has_initializer_; }

  PoolStats stats() const noexcept {
    PoolStats now{slots_.size(), running_workers_.load(std::memory_order_acquire), 0, injection_.size_hint()};
    for (const WorkerSlot& slot : slots_) {
      now.busy += slot.busy.load(std::memory_order_relaxed) > 0 ? 1 : 0;
      now.queued += slot.queue.size_hint();
    }
    return now;
  }

 private:
  static void name_thread(const std::string& name, std::size_t index) {
    std::string full = name + "-" + std::to_string(index);
    if (full.size() > 15) full.erase(0, full.size() - 15);  // keep the index, which is what differs
    pthread_setname_np(pthread_self(), full.c_str());
  }

  // While the diagnostics are on, a waiter on the task's future is shown whom it waits for.
  void run(Runnable* task) {
    WorkerSlot& slot = slots_[current_index_];
    slot.busy.store(slot.busy.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    if (tracking_on()) [[unlikely]] {
      const TrackedTask tracked(future_key(task));
      task->run();
    } else {
      task->run();
    }
    slot.busy.store(slot.busy.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    slot.completed.store(slot.completed.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  PoolActivity activity() const {
    const PoolStats now = stats();
    std::uint64_t completed = 0;
    for (const WorkerSlot& slot : slots_) completed += slot.completed.load(std::memory_order_relaxed);
    return {"ThreadPool", now.workers, now.busy, now.queued, completed};
  }

  static void discard_all(TaskQueue& queue) {
    for (Runnable* task : queue.take_all()) task->discard();
  }

  void worker_loop(std::size_t index) {
    current_ = this;
    current_index_ = index;
    this_thread_pool = this;
    std::minstd_rand random(static_cast<unsigned>(index + 1));
    for (;;) {
      if (Runnable* task = find_task(index, &random)) {
        run(task);
        continue;
      }
      if (spin_for_work(index)) continue;
      if (!sleep(index)) break;
    }
    this_thread_pool = nullptr;
    current_ = nullptr;
  }

  Runnable* find_task(std::size_t index, std::minstd_rand* random = nullptr) {
    TaskQueue& own = slots_[index].queue;
    if (Runnable* task = own.pop_back()) return task;
    if (injection_.ready_hint()) {
      // The ring hands out one task at a time without contention; the overflow queue gives a
      // batch per lock round, and what this worker cannot start at once, others steal.
      std::array<Runnable*, 32> batch;
      if (const std::size_t n = injection_.take(batch.data(), batch.size()); n > 0) {
        // The owner pops its deque from the back: push newest first so outside submissions
        // still run oldest first.
        for (std::size_t k = n; k-- > 1;) own.push_back(batch[k]);
        if (n > 1 && sleepers_.load(std::memory_order_seq_cst) > 0) wake(1);
        return batch[0];
      }
    }
    const std::size_t n = slots_.size();
    const std::size_t start = random ? (*random)() % n : index;
    for (std::size_t k = 0; k < n; ++k) {
      const std::size_t victim = (start + k) % n;
      if (victim == index) continue;
      if (Runnable* task = slots_[victim].queue.pop_front()) return task;
    }
    return nullptr;
  }

  bool any_work_hint() const noexcept {
    if (injection_.ready_hint()) return true;
    for (const auto& slot : slots_) {
      if (!slot.queue.empty_hint()) return true;
    }
    return false;
  }

  // Spins (without locks) for a short budget; true as soon as work shows up.
  bool spin_for_work(std::size_t) {
    const auto end = Clock::now() + kWorkerSpin;
    do {
      for (int i = 0; i < 64; ++i) {
        if (any_work_hint()) return true;
        cpu_relax();
      }
      if (stopping_.load(std::memory_order_relaxed)) return false;
      // With more threads than cores (a submitter plus the workers), give the core away.
      std::this_thread::yield();
    } while (Clock::now() < end);
    return false;
  }

  // Sleeps until woken. False when the pool is stopping and there is nothing left to run.
  bool sleep(std::size_t) {
    // Announce first, then re-check: a submitter pushes, then reads sleepers_; a sleeper bumps
    // sleepers_, then reads the queue sizes. With both sides seq_cst, one sees the other.
    // `stopping` is read before the queues: every submit that beat the shutdown is then seen.
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    const std::uint32_t epoch = epoch_.load(std::memory_order_seq_cst);
    const bool stopping = stopping_.load(std::memory_order_seq_cst);
    bool work = !injection_.empty_seq_cst();
    for (const auto& slot : slots_) work = work || slot.queue.size_seq_cst() > 0;
    if (!work && !stopping) futex_wait(epoch_, epoch, Clock::time_point::max());
    sleepers_.fetch_sub(1, std::memory_order_seq_cst);
    return work || !stopping;
  }

  void wake(int count) {
    epoch_.fetch_add(1, std::memory_order_seq_cst);
    futex_wake(epoch_, count);
  }

  static inline thread_local Scheduler* current_ = nullptr;
  static inline thread_local std::size_t current_index_ = 0;

  std::vector<WorkerSlot> slots_;
  InjectionQueue injection_;
  alignas(64) std::atomic<std::uint32_t> sleepers_{0};
  alignas(64) std::atomic<std::uint32_t> epoch_{0};
  std::atomic<std::uint32_t> running_workers_;
  const bool has_initializer_;
  std::atomic<bool> closed_{false};
  std::atomic<bool> cancelled_{false};
  // Last, so that it is destroyed first, while what its probe reads still exists.
  WatchedPool watched_{[this] { return activity(); }};
  std::atomic<bool> stopping_{false};
  std::mutex join_mutex_;
};

namespace {

// Pools destroyed from one of their own tasks, until another thread joins them: the next pool
// destroyed elsewhere joins those that have drained, and the program's exit joins the rest (so
// no worker thread outlives main, still touching the pool while statics are destroyed).
class DetachedPools {
 public:
  void adopt(Scheduler* scheduler) {
    std::lock_guard lock(mutex_);
    pools_.emplace_back(scheduler);
  }
  void join_finished() {
    std::vector<std::unique_ptr<Scheduler>> finished;
    {
      std::lock_guard lock(mutex_);
      for (auto it = pools_.begin(); it != pools_.end();) {
        if ((*it)->finished()) {
          finished.push_back(std::move(*it));
          it = pools_.erase(it);
        } else {
          ++it;
        }
      }
    }
  }  // joined and freed here, outside the lock

 private:
  std::mutex mutex_;
  std::vector<std::unique_ptr<Scheduler>> pools_;  // the destructor joins what is left
};

DetachedPools& detached_pools() {
  static DetachedPools pools;
  return pools;
}

}  // namespace

void SchedulerDeleter::operator()(Scheduler* scheduler) const noexcept {
  if (scheduler->is_current()) {
    scheduler->detach();
    detached_pools().adopt(scheduler);
    return;
  }
  std::default_delete<Scheduler>()(scheduler);
  detached_pools().join_finished();
}

SchedulerPtr make_scheduler(std::size_t workers, const std::string& name, const std::function<void()>& initializer) {
  return SchedulerPtr(std::make_unique<Scheduler>(workers, name, initializer).release());
}

void post(Scheduler& scheduler, Runnable* task) { scheduler.post(task); }
std::size_t worker_count(const Scheduler& scheduler) noexcept { return scheduler.size(); }
bool is_closed(const Scheduler& scheduler) noexcept { return scheduler.closed(); }
bool on_worker_of(const Scheduler& scheduler) noexcept { return scheduler.is_current(); }
bool has_initializer(const Scheduler& scheduler) noexcept { return scheduler.has_initializer(); }
PoolStats stats(const Scheduler& scheduler) noexcept { return scheduler.stats(); }
void shutdown(Scheduler& scheduler, bool wait, bool cancel_pending) { scheduler.stop(wait, cancel_pending); }
bool shutdown_until(Scheduler& scheduler, Clock::time_point deadline, bool cancel_pending) {
  return scheduler.stop_until(deadline, cancel_pending);
}

}  // namespace detail

ThreadPool::ThreadPool(ThreadPoolOptions options)
    : scheduler_(detail::make_scheduler(options.workers, options.name, options.initializer)) {}

ThreadPool::~ThreadPool() { scheduler_.reset(); }

}  // namespace tandem
