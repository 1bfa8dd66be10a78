// What ThreadPool and ProcessPool offer alike, written once: map in its forms, map_async, starmap, imap,
// shutdown with its timed forms, stats. The pool derives from PoolSurface<Pool> and provides
// the engine (private, befriending PoolSurface): map_by, make_imap, submit_chunk,
// auto_chunksize, unpacking, stop, stop_until and activity. A user writes code over either pool with tandem::Executor
// (executor.hpp), not with this type.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <exception>
#include <iterator>
#include <memory>
#include <ranges>
#include <type_traits>
#include <utility>
#include <vector>

#include "tandem/detail/deadline.hpp"
#include "tandem/detail/travelling_callable.hpp"
#include "tandem/detail/zip.hpp"
#include "tandem/future.hpp"
#include "tandem/pool_stats.hpp"
#include "tandem/shutdown.hpp"

namespace tandem::detail {

inline std::size_t auto_chunksize(std::size_t items, std::size_t workers) {
  // ~8 chunks per worker balances uneven items without paying per-item scheduling.
  return std::max<std::size_t>(1, items / (workers * 8));
}

// Joins the chunks of a map_async into its one future: the values in order once all are in, or
// the first failure, which cancels the rest. The result's own end (a cancel() by its holder
// included) cancels the chunks too.
template <class R>
struct MapAsyncJoin {
  Promise<std::vector<R>> promise;
  std::vector<Future<std::vector<R>>> parts;
  std::atomic<std::size_t> remaining{0};
  std::atomic<bool> ended{false};

  void part_done(std::size_t index) {
    auto& part = FutureAccess::state(parts[index]);
    if (part.phase() != kValue) {
      if (!ended.exchange(true, std::memory_order_acq_rel)) {
        promise.set_exception(parts[index].exception());
        cancel_parts();
      }
      return;
    }
    if (remaining.fetch_sub(1, std::memory_order_acq_rel) != 1 || ended.exchange(true, std::memory_order_acq_rel)) {
      return;
    }
    std::vector<R> all;
    for (auto& each : parts) {
      for (R& value : FutureAccess::state(each).take_value()) all.push_back(std::move(value));
    }
    promise.set_value(std::move(all));
  }
  void cancel_parts() noexcept {
    for (auto& part : parts) part.cancel();
  }
};

template <class Pool>
class PoolSurface {
 public:
  // f applied to every element, results in input order, in one vector. Blocks until done; the
  // first exception stops the chunks not yet begun and is rethrown. `chunksize` 0 picks one
  // (about 8 chunks per worker). A ThreadPool reads a random-access sized range in place, a
  // ProcessPool a contiguous one; other ranges are copied first.
  template <class F, std::ranges::input_range Range>
  auto map(F&& f, Range&& range, std::size_t chunksize = 0) {
    return pool().map_by(f, std::forward<Range>(range), Clock::time_point::max(), chunksize);
  }

  // map over several ranges side by side, f taking one element of each (Python's map(f, xs, ys)),
  // stopping at the end of the shortest. The ranges are read into tuples first, then starmap.
  template <class F, std::ranges::input_range First, std::ranges::input_range Second,
            std::ranges::input_range... More>
  auto map(F&& f, First&& first, Second&& second, More&&... more) {
    return starmap(std::forward<F>(f), zip_to_tuples(first, second, more...));
  }

  // map with a timeout (a deadline): throws TimeoutError when the results are not all there
  // within `timeout` (by `deadline`), at that moment. The chunks not begun are cancelled; those
  // running finish in the background and their results are dropped (a ProcessPool's workers
  // finish the chunk they have). So that they touch nothing of yours, a ThreadPool's map_for
  // works on its own copies of the input and of `f`.
  template <class F, std::ranges::input_range Range, class Rep, class Period>
  auto map_for(F&& f, Range&& range, std::chrono::duration<Rep, Period> timeout, std::size_t chunksize = 0) {
    return pool().map_by(f, std::forward<Range>(range), deadline_after(timeout), chunksize);
  }
  template <class F, std::ranges::input_range Range, class Clock, class Duration>
  auto map_until(F&& f, Range&& range, std::chrono::time_point<Clock, Duration> deadline, std::size_t chunksize = 0) {
    return pool().map_by(f, std::forward<Range>(range), deadline_at(deadline), chunksize);
  }

  // map without blocking (Python's map_async): the results arrive in input order in the returned
  // future. The input is read into a copy first, so it may go once the call returns. The first
  // exception fails the future and cancels the other chunks; cancel() on the future cancels them
  // all (a chunk running on a ProcessPool stops with its worker, as Future::cancel says).
  template <class F, std::ranges::input_range Range>
  auto map_async(F&& f, Range&& range, std::size_t chunksize = 0) {
    using T = std::ranges::range_value_t<Range>;
    using Fn = std::decay_t<F>;
    using R = std::invoke_result_t<Fn&, T&>;
    static_assert(!std::is_void_v<R>,
                  "map_async needs a function that returns a value (a future of the results); for a void "
                  "function submit the work, or use map");
    std::vector<T> items(std::ranges::begin(range), std::ranges::end(range));
    const std::size_t n = items.size();
    if (chunksize == 0) chunksize = pool().template auto_chunksize<T, R>(n, items.empty() ? nullptr : &items.front());
    auto join = std::make_shared<MapAsyncJoin<R>>();
    Future<std::vector<R>> result = join->promise.get_future();
    auto fn = std::make_shared<Fn>(std::forward<F>(f));
    try {
      for (std::size_t begin = 0; begin < n; begin += chunksize) {
        const auto first = items.begin() + static_cast<std::ptrdiff_t>(begin);
        const auto last = items.begin() + static_cast<std::ptrdiff_t>(std::min(n, begin + chunksize));
        join->parts.push_back(
            pool().submit_chunk(fn, std::vector<T>(std::make_move_iterator(first), std::make_move_iterator(last))));
      }
    } catch (...) {
      join->cancel_parts();
      throw;
    }
    if (join->parts.empty()) {
      join->promise.set_value(std::vector<R>{});
      return result;
    }
    join->remaining.store(join->parts.size(), std::memory_order_release);
    for (std::size_t i = 0; i < join->parts.size(); ++i) {
      FutureAccess::state(join->parts[i]).on_ready([join, i] { join->part_done(i); });
    }
    FutureAccess::state(result).on_ready([join] { join->cancel_parts(); });
    return result;
  }

  // map over tuples, each unpacked into f's arguments (Python's starmap).
  template <class F, std::ranges::input_range Range>
  auto starmap(F&& f, Range&& range, std::size_t chunksize = 0) {
    return map(Pool::unpacking(f), std::forward<Range>(range), chunksize);
  }
  template <class F, std::ranges::input_range Range, class Rep, class Period>
  auto starmap_for(F&& f, Range&& range, std::chrono::duration<Rep, Period> timeout, std::size_t chunksize = 0) {
    return starmap_until(std::forward<F>(f), std::forward<Range>(range), deadline_after(timeout), chunksize);
  }
  template <class F, std::ranges::input_range Range, class Clock, class Duration>
  auto starmap_until(F&& f, Range&& range, std::chrono::time_point<Clock, Duration> deadline, std::size_t chunksize = 0) {
    // A copy of f: chunks still running after a timeout outlive the caller's f.
    return map_until(Unpacking<std::decay_t<F>>{f}, std::forward<Range>(range), deadline, chunksize);
  }

  // Lazy, ordered map: an input range whose elements are f(x) in input order. The input is read
  // only as far as a bounded window ahead of the consumer (2 x workers + 2 chunks), so endless
  // ranges work. An exception surfaces when its element is reached. Keep the returned stream in
  // place (it is not movable) and do not let it outlive the pool or a borrowed input range.
  template <class F, std::ranges::input_range Range>
  auto imap(F&& f, Range&& range, std::size_t chunksize = 1) {
    return pool().template make_imap<true>(std::forward<F>(f), std::forward<Range>(range), chunksize);
  }
  // Like imap, but results come in completion order.
  template <class F, std::ranges::input_range Range>
  auto imap_unordered(F&& f, Range&& range, std::size_t chunksize = 1) {
    return pool().template make_imap<false>(std::forward<F>(f), std::forward<Range>(range), chunksize);
  }

  // Stops accepting work (submit then throws PoolClosed). .cancel_pending: queued tasks that have
  // not begun are cancelled (their futures throw CancelledError). .wait: blocks until every
  // worker has finished; otherwise returns at once and the destructor joins. Tasks already
  // running may still submit follow-up work while the pool drains. Idempotent.
  void shutdown(ShutdownOptions options = {}) { pool().stop(options.wait, options.cancel_pending); }
  // shutdown() that gives up after `timeout` (at `deadline`): false if workers are still busy
  // then (the pool stays closed; call again, or let the destructor join them).
  template <class Rep, class Period>
  bool shutdown_for(std::chrono::duration<Rep, Period> timeout, ShutdownOptions options = {}) {
    return pool().stop_until(options.wait ? deadline_after(timeout) : Clock::now(), options.cancel_pending);
  }
  template <class Clock, class Duration>
  bool shutdown_until(std::chrono::time_point<Clock, Duration> deadline, ShutdownOptions options = {}) {
    return pool().stop_until(options.wait ? deadline_at(deadline) : detail::Clock::now(), options.cancel_pending);
  }

  // What the pool is doing now (pool_stats.hpp).
  PoolStats stats() const { return pool().activity(); }

 protected:
  PoolSurface() = default;
  ~PoolSurface() = default;

 private:
  Pool& pool() noexcept { return static_cast<Pool&>(*this); }
  const Pool& pool() const noexcept { return static_cast<const Pool&>(*this); }
};

}  // namespace tandem::detail
