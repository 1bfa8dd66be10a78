// Executor: the concept that ThreadPool and ProcessPool both satisfy, for code written once over
// "a pool" (Python's concurrent.futures.Executor). What a task may capture still depends on the
// pool: a ProcessPool takes only callables and values that travel (process_pool.hpp), so code
// meant for both passes state as arguments or binds it with tandem::partial.
//
//   template <tandem::Executor Pool> std::vector<int> squares(Pool& pool, const std::vector<int>& xs) {
//     return pool.map(+[](int x) { return x * x; }, xs);
//   }
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <vector>

#include "tandem/future.hpp"
#include "tandem/pool_stats.hpp"
#include "tandem/shutdown.hpp"

namespace tandem {

namespace detail {
inline int executor_probe(int x) { return x; }
}  // namespace detail

// The shared surface: submit, map (also over several ranges and with a deadline), map_async, starmap,
// imap, imap_unordered, shutdown and its timed forms, size, closed, stats; `Pool::Options`
// names its options (with .workers), and `Pool::kSharesMemory` says whether tasks see the
// caller's memory (threads) or a copy of the program (processes).
template <class Pool>
concept Executor =
    requires(Pool& pool, const Pool& view, const std::vector<int>& xs, typename Pool::Options options) {
      { Pool::kSharesMemory } -> std::convertible_to<bool>;
      options.workers = std::size_t{1};
      { pool.submit(&detail::executor_probe, 1) } -> std::same_as<Future<int>>;
      { pool.map(&detail::executor_probe, xs) } -> std::same_as<std::vector<int>>;
      { pool.map(&detail::executor_probe, xs, 1) } -> std::same_as<std::vector<int>>;
      { pool.map_for(&detail::executor_probe, xs, std::chrono::seconds(1)) } -> std::same_as<std::vector<int>>;
      { pool.map_async(&detail::executor_probe, xs) } -> std::same_as<Future<std::vector<int>>>;
      pool.imap(&detail::executor_probe, xs);
      pool.imap_unordered(&detail::executor_probe, xs);
      pool.shutdown(ShutdownOptions{});
      { pool.shutdown_for(std::chrono::seconds(1)) } -> std::same_as<bool>;
      { view.size() } -> std::same_as<std::size_t>;
      { view.closed() } -> std::same_as<bool>;
      { view.stats() } -> std::same_as<PoolStats>;
    };

}  // namespace tandem
