// ThreadPool: a fixed set of worker threads with futures, map and lazy imap: Python's
// ThreadPoolExecutor and multiprocessing.pool.ThreadPool, without a GIL.
//
//   tandem::ThreadPool pool;                                   // cpu_count() workers
//   tandem::Future<int> f = pool.submit([](int x) { return x * x; }, 7);
//   std::vector<int> squares = pool.map([](int x) { return x * x; }, numbers);
//
// Scheduling: each worker owns a deque (LIFO for itself, stolen FIFO by others); submissions from
// outside go through an injection queue. Idle workers spin ~300 us, then sleep on a futex, so an
// idle pool uses no CPU and a busy one hands a task over and back in about a microsecond.
//
// A task that waits on a future of this pool (get, wait, wait_any, as_completed, a nested map
// or imap) runs that future's task itself if no worker has started it, so recursive and nested
// submission never deadlocks, even with one worker. It runs nothing else while it waits: a task
// blocked in any other wait (an Event, a Queue, a lock) holds its worker, as in Python. Sizing: for CPU-bound work keep the default (one worker per usable CPU); for blocking
// I/O use as many workers as requests you want in flight (64 workers cost ~64 x 8 MiB of
// *virtual* stack and nothing while idle).
//
// Destruction is shutdown(wait = true): every task already submitted runs, then workers exit.
// A pool destroyed by one of its own tasks cannot wait for itself: it closes, its workers drain
// what was queued and end, and another thread joins them later (at the latest, the program's exit).
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <stop_token>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "tandem/cpu.hpp"
#include "tandem/detail/map_job.hpp"
#include "tandem/detail/pool_surface.hpp"
#include "tandem/detail/scheduler.hpp"
#include "tandem/detail/task_result.hpp"
#include "tandem/error.hpp"
#include "tandem/future.hpp"
#include "tandem/imap_stream.hpp"
#include "tandem/shutdown.hpp"

namespace tandem {

struct ThreadPoolOptions {
  // Number of worker threads; must be at least 1.
  std::size_t workers = cpu_count();
  // Workers are named "<name>-<index>" (as seen in top -H and gdb; cut to 15 characters).
  std::string name = "tandem";
  // Runs once on each worker before it takes tasks (set up thread-locals, pin, log). If it
  // throws on any worker, the pool's constructor throws that exception.
  std::function<void()> initializer;
};

namespace detail {

template <class F, class Range>
using MapResult = std::invoke_result_t<F&, std::ranges::range_reference_t<Range>>;

}  // namespace detail

class ThreadPool : public detail::PoolSurface<ThreadPool> {
 public:
  using Options = ThreadPoolOptions;
  // Tasks run in this process: they see (and may race on) its memory.
  static constexpr bool kSharesMemory = true;

  // cpu_count() workers.
  ThreadPool() : ThreadPool(ThreadPoolOptions{}) {}
  explicit ThreadPool(std::size_t workers) : ThreadPool(options_with(workers)) {}
  explicit ThreadPool(ThreadPoolOptions options);
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  // shutdown(wait = true): runs what was submitted, then joins the workers.
  ~ThreadPool();

  std::size_t size() const noexcept { return detail::worker_count(*scheduler_); }
  bool closed() const noexcept { return detail::is_closed(*scheduler_); }
  // map, map_for, map_async, starmap, imap, imap_unordered, shutdown, shutdown_for and stats are the same
  // on both pools, documented once in detail/pool_surface.hpp.

  // Runs f(args...) on a worker. `f` and `args` are decay-copied (move-only ones are moved in)
  // and invoked as rvalues, like std::thread. If `f` accepts a std::stop_token first, it gets
  // one that Future::cancel() triggers while the task runs. Throws PoolClosed after shutdown.
  template <class F, class... Args>
  auto submit(F&& f, Args&&... args) -> Future<typename detail::TaskResult<F, Args...>::type> {
    using R = typename detail::TaskResult<F, Args...>::type;
    constexpr bool takes_token = std::is_invocable_v<std::decay_t<F>, std::stop_token, std::decay_t<Args>...>;
    auto call = [f = std::forward<F>(f), ... args = std::forward<Args>(args)](std::stop_token token) mutable -> R {
      if constexpr (takes_token) {
        return std::invoke(std::move(f), std::move(token), std::move(args)...);
      } else {
        return std::invoke(std::move(f), std::move(args)...);
      }
    };
    auto task = std::make_unique<detail::TaskState<R, decltype(call), takes_token>>(std::move(call), scheduler_.get());
    detail::post(*scheduler_, task.get());
    return detail::FutureAccess::make(detail::StateRef<detail::State<R>>(task.release()));
  }

 private:
  template <class Pool, class R, class View, class F, bool Ordered>
  friend class ImapStream;
  friend class detail::PoolSurface<ThreadPool>;

  void stop(bool wait, bool cancel_pending) { detail::shutdown(*scheduler_, wait, cancel_pending); }
  bool stop_until(detail::Clock::time_point deadline, bool cancel_pending) {
    return detail::shutdown_until(*scheduler_, deadline, cancel_pending);
  }
  PoolStats activity() const { return detail::stats(*scheduler_); }

  template <bool Ordered, class F, class Range>
  auto make_imap(F&& f, Range&& range, std::size_t chunksize);

  template <class T, class R>
  std::size_t auto_chunksize(std::size_t n, const T* = nullptr) const {
    return detail::auto_chunksize(n, size());
  }

  // One imap chunk: f over `items`, as one task.
  template <class F, class T>
  auto submit_chunk(const std::shared_ptr<F>& f, std::vector<T> items) {
    return submit([f, items = std::move(items)]() mutable {
      std::vector<std::invoke_result_t<F&, T&>> out;
      out.reserve(items.size());
      for (auto& item : items) out.push_back((*f)(item));
      return out;
    });
  }

  static ThreadPoolOptions options_with(std::size_t workers) {
    ThreadPoolOptions options;
    options.workers = workers;
    return options;
  }

  template <class F>
  static auto unpacking(F& f) {
    return [&f](auto&& args) { return std::apply(f, std::forward<decltype(args)>(args)); };
  }

  template <class F, class Range>
  auto map_by(F& f, Range&& range, detail::Clock::time_point deadline, std::size_t chunksize) {
    if (deadline != detail::Clock::time_point::max()) return map_timed(f, std::forward<Range>(range), deadline, chunksize);
    if constexpr (std::ranges::random_access_range<Range> && std::ranges::sized_range<Range>) {
      return map_indexed(f, range, chunksize);
    } else {
      std::vector<std::ranges::range_value_t<Range>> items(std::ranges::begin(range), std::ranges::end(range));
      return map_indexed(f, items, chunksize);
    }
  }

  // Where map stores results: straight into the output vector when R has a default value, else
  // (and for bool, whose vector packs bits that neighbouring chunks would race on) in optionals.
  template <class R>
  static constexpr bool kStoresInPlace = std::is_default_constructible_v<R> && !std::is_same_v<R, bool>;
  template <class R>
  using Slot = std::conditional_t<kStoresInPlace<R>, R, std::optional<R>>;
  template <class R>
  static std::vector<R> unpack(std::vector<Slot<R>>& slots) {
    if constexpr (kStoresInPlace<R>) {
      return std::move(slots);
    } else {
      std::vector<R> out;
      out.reserve(slots.size());
      for (auto& slot : slots) out.push_back(std::move(*slot));
      return out;
    }
  }

  template <class F, class Range>
  auto map_indexed(F& f, Range& range, std::size_t chunksize) {
    using R = detail::MapResult<F, Range>;
    const std::size_t n = std::ranges::size(range);
    if (chunksize == 0) chunksize = detail::auto_chunksize(n, size());
    const std::size_t chunks = (n + chunksize - 1) / chunksize;
    auto first = std::ranges::begin(range);
    auto for_each_chunk = [&](auto&& store) {
      if (n == 0) return;
      // Everything the loop touches is a local copy, so the compiler can vectorize it.
      detail::run_chunks(*scheduler_, chunks, [=, &store](std::size_t chunk) {
        const std::size_t begin = chunk * chunksize, end = std::min(n, begin + chunksize);
        auto in = first + static_cast<std::ptrdiff_t>(begin);
        auto write = store;
        for (std::size_t i = begin; i < end; ++i, ++in) write(i, *in);
      });
    };
    if constexpr (std::is_void_v<R>) {
      for_each_chunk([&f](std::size_t, auto&& x) { f(std::forward<decltype(x)>(x)); });
    } else {
      std::vector<Slot<R>> slots(n);
      for_each_chunk([&f, results = slots.data()](std::size_t i, auto&& x) {
        if constexpr (kStoresInPlace<R>) {
          results[i] = f(std::forward<decltype(x)>(x));
        } else {
          results[i].emplace(f(std::forward<decltype(x)>(x)));
        }
      });
      return unpack<R>(slots);
    }
  }

  // map_for: the job owns copies of the input, of f and of the results, so that chunks still
  // running after the deadline touch only what they share with nobody.
  template <class F, class Range>
  auto map_timed(F& f, Range&& range, detail::Clock::time_point deadline, std::size_t chunksize) {
    using Fn = std::decay_t<F>;
    static_assert(std::is_copy_constructible_v<Fn>,
                  "ThreadPool::map_for copies the function (chunks running at the deadline outlive the call)");
    using T = std::ranges::range_value_t<Range>;
    using R = std::invoke_result_t<Fn&, T&>;
    struct Job {
      std::vector<T> items;
      Fn f;
      std::vector<std::conditional_t<std::is_void_v<R>, char, Slot<R>>> slots;
    };
    auto job = std::make_shared<Job>(
        Job{std::vector<T>(std::ranges::begin(range), std::ranges::end(range)), Fn(f), {}});
    const std::size_t n = job->items.size();
    if constexpr (!std::is_void_v<R>) job->slots.resize(n);
    if (chunksize == 0) chunksize = detail::auto_chunksize(n, size());
    const std::size_t chunks = (n + chunksize - 1) / chunksize;
    const bool in_time = n == 0 || detail::run_chunks_until(*scheduler_, chunks, deadline, [job, chunksize, n](std::size_t chunk) {
      const std::size_t end = std::min(n, chunk * chunksize + chunksize);
      for (std::size_t i = chunk * chunksize; i < end; ++i) {
        if constexpr (std::is_void_v<R>) {
          job->f(job->items[i]);
        } else if constexpr (kStoresInPlace<R>) {
          job->slots[i] = job->f(job->items[i]);
        } else {
          job->slots[i].emplace(job->f(job->items[i]));
        }
      }
    });
    if (!in_time) detail::throw_timeout("ThreadPool::map_for: not every result arrived in time");
    if constexpr (!std::is_void_v<R>) return unpack<R>(job->slots);
  }

  detail::SchedulerPtr scheduler_;
};

template <bool Ordered, class F, class Range>
auto ThreadPool::make_imap(F&& f, Range&& range, std::size_t chunksize) {
  using View = std::views::all_t<Range>;
  using R = std::invoke_result_t<std::decay_t<F>&, std::ranges::range_value_t<Range>&>;
  static_assert(!std::is_void_v<R>, "imap needs a function that returns a value; use map for void functions");
  return ImapStream<ThreadPool, R, View, std::decay_t<F>, Ordered>(*this, std::views::all(std::forward<Range>(range)),
                                                        std::forward<F>(f), chunksize);
}

}  // namespace tandem
