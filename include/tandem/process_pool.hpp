// ProcessPool: ThreadPool's interface on worker processes, for work that must be isolated: code
// that may crash, leak, hang or keep global state. Python's ProcessPoolExecutor and
// multiprocessing.Pool, without their broken pools, pipes and pickling.
//
//   tandem::ProcessPool pool;                                   // cpu_count() worker processes
//   tandem::Future<int> f = pool.submit([](int x) { return x * x; }, 7);
//   std::vector<int> squares = pool.map([](int x) { return x * x; }, numbers);
//
// Isolation: a task that crashes (segfault, abort, exit, SIGKILL) fails alone: its future throws
// tandem::WorkerLost, the worker is replaced, every other task goes on. With .task_timeout, a
// task that runs too long throws tandem::TaskTimeout and its worker is killed and replaced.
// cancel() of a task a worker is running kills and replaces that worker too.
//
// What travels: a function pointer or a stateless callable (a captureless lambda); state goes as
// arguments, or bound with tandem::partial (partial.hpp). C++ cannot see a lambda's captures, so a
// capturing lambda does not compile: a captured reference or pointer would read the worker's own
// memory. Arguments, bound values and results: trivially copyable types holding no address
// (pointer, reference, view, also as a struct's field) and std::vector / std::string of them go as
// raw bytes, other types through cereal. Anything else fails to compile with a message saying what
// to do. An exception thrown by a task reaches get() as its own type when registered (the
// <stdexcept> ones are; see register_remote_exception), else as tandem::RemoteError with its type
// name and message.
//
// Transport: each worker has two rings in shared memory (requests, responses); a waiting caller
// reads responses itself while it spins, so a round trip on an idle pool costs microseconds, and
// an idle pool sleeps on futexes. A message larger than an eighth of a ring travels in a memory
// file of its own instead (no size limit but memory; see docs/process_pool.md).
//
// The inherent difference from ThreadPool: a task runs in a process of its own, started by the
// pool's start method (forkserver by default: the program as the fork server saw it, not this
// process's memory now), so what it writes there stays in the worker. Results come back only
// through its return value.
//
// A supervisor thread of this process starts the workers (and their replacements) by the start
// method, and watches them. They ignore SIGINT (Ctrl-C
// stops the parent, whose death kills them within moments), die with the parent (even on
// SIGKILL), inherit no file descriptors besides stdin, stdout and stderr, and are reaped.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <ranges>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "tandem/cpu.hpp"
#include "tandem/detail/codec.hpp"
#include "tandem/detail/pool_surface.hpp"
#include "tandem/detail/remote_task.hpp"
#include "tandem/detail/task_result.hpp"
#include "tandem/error.hpp"
#include "tandem/future.hpp"
#include "tandem/imap_stream.hpp"
#include "tandem/partial.hpp"
#include "tandem/start_method.hpp"
#include "tandem/worker_initializer.hpp"

namespace tandem {

struct ProcessPoolOptions {
  // Number of worker processes; must be at least 1.
  std::size_t workers = cpu_count();
  // How workers start (see start_method.hpp). The default, forkserver, is safe in a program
  // that runs threads; call tandem::init(argc, argv) at the top of main to use it from anywhere.
  StartMethod start_method = default_start_method();
  // Runs once in each worker process as it starts: `.initializer = setup` or, with values for
  // it (Python's initargs), `.initializer = {setup, values...}` (worker_initializer.hpp). If it
  // throws in the first workers, the pool's constructor throws that exception; in a replacement
  // worker, the worker counts as failing to start, and after 3 such failures in a row the pool
  // closes with an error.
  WorkerInitializer initializer = {};
  // A task running longer is stopped (its worker killed and replaced); its future throws
  // TaskTimeout. Zero: no limit.
  std::chrono::milliseconds task_timeout{0};
  // Address space each worker may add on top of what it starts with (bytes; 0: no limit). A task
  // whose allocation fails past it gets MemoryLimitExceeded.
  std::size_t memory_limit = 0;
  // A worker exits after this many tasks and is replaced (0: never), as a cure for leaks.
  std::size_t max_tasks_per_child = 0;
  // Size of each worker's request ring and response ring in shared memory; a power of two. A
  // request or result larger than an eighth of it goes through a memory file of its own.
  std::size_t ring_bytes = std::size_t{4} << 20;
};

namespace detail {

struct ProcessPoolCoreDeleter {
  void operator()(ProcessPoolCore* core) const noexcept;
};

std::shared_ptr<ProcessPoolCore> make_process_pool_core(ProcessPoolOptions options);
// A request's bytes: `write` fills `size` bytes at `out` (straight into a worker's ring when it
// has room, so that a large map chunk is copied once).
struct RequestSource {
  std::size_t size;
  void (*write)(std::byte* out, const void* context);
  const void* context;
};
// Sends a request for `task`, which then holds one reference for the pool. Throws PoolClosed,
// or Error if the request is larger than a ring allows; then `task` is untouched.
void submit_remote(ProcessPoolCore& core, const RequestSource& request, RemoteResult* task);
std::size_t worker_count(const ProcessPoolCore& core) noexcept;
bool is_closed(const ProcessPoolCore& core) noexcept;
PoolStats stats(ProcessPoolCore& core);
// The largest request or result that travels through a worker's ring; a larger one goes through
// a memory file of its own.
std::size_t ring_message_bytes(const ProcessPoolCore& core) noexcept;
void shutdown(ProcessPoolCore& core, bool wait, bool cancel_pending);
void terminate(ProcessPoolCore& core);
bool shutdown_until(ProcessPoolCore& core, Clock::time_point deadline, bool cancel_pending);
// True in a worker process of any ProcessPool.
bool in_worker_process() noexcept;
// Throws Error unless this process created the pool.
void check_owner(const ProcessPoolCore& core);
// The reused buffer a request is encoded into (one per thread).
ByteWriter& request_buffer();

template <class F>
void check_callable() {
  static_assert(kCallableCanTravel<F>,
                "ProcessPool: this callable cannot be sent to a worker process. C++ cannot see what a lambda "
                "captured, and a captured reference, pointer or this would read the worker's own memory, so only "
                "state the compiler can check travels: use a function pointer or a captureless lambda, and pass "
                "the data as arguments, pool.submit(f, args...), or bind it with tandem::partial(f, values...).");
}

template <class T>
void check_value() {
  static_assert(kCanTravel<T>,
                "ProcessPool: an argument or result type cannot travel between processes. Use a trivially "
                "copyable type that holds no pointer, reference or view (std::string_view, std::span), not even "
                "in a field; a std::vector or std::string of such; or a type with a cereal serialize() function and a "
                "default constructor (and include the cereal/types/ header for the std containers it uses).");
}

}  // namespace detail

class ProcessPool : public detail::PoolSurface<ProcessPool> {
 public:
  using Options = ProcessPoolOptions;
  // Tasks run in worker processes: what they write stays there; results come back by value.
  static constexpr bool kSharesMemory = false;

  // cpu_count() workers.
  ProcessPool() : ProcessPool(ProcessPoolOptions{}) {}
  explicit ProcessPool(std::size_t workers) : ProcessPool(options_with(workers)) {}
  // Starts the workers and waits until each has run the initializer.
  explicit ProcessPool(ProcessPoolOptions options) : core_(detail::make_process_pool_core(std::move(options))) {}
  ProcessPool(const ProcessPool&) = delete;
  ProcessPool& operator=(const ProcessPool&) = delete;
  // shutdown(wait = true): runs what was submitted, then stops and reaps the workers.
  ~ProcessPool() { shutdown(); }

  std::size_t size() const noexcept { return detail::worker_count(*core_); }
  bool closed() const noexcept { return detail::is_closed(*core_); }
  // map, map_for, map_async, starmap, imap, imap_unordered, shutdown, shutdown_for and stats are the same
  // on both pools, documented once in detail/pool_surface.hpp. Here shutdown's .cancel_pending
  // also skips the tasks queued in a worker's ring, and map_for's late chunks finish in their
  // workers, whose results are dropped.

  // Runs f(args...) in a worker process (see the header comment for what may travel). If `f`
  // accepts a std::stop_token first, it gets one that never fires: cancel() of a running task
  // kills its worker instead. Throws PoolClosed after shutdown.
  template <class F, class... Args>
  auto submit(F&& f, Args&&... args) {
    using Fn = std::decay_t<F>;
    detail::check_callable<Fn>();
    (detail::check_value<std::decay_t<Args>>(), ...);
    using R = typename detail::TaskResult<Fn, Args...>::type;
    detail::check_value<R>();
    detail::ByteWriter& request = start_request(&detail::submit_entry<Fn, std::decay_t<Args>...>);
    detail::encode_callable(request, static_cast<const Fn&>(f));
    (detail::encode(request, static_cast<const std::decay_t<Args>&>(args)), ...);
    return send<detail::RemoteState<R>, R>(request);
  }

  // Stops everything now, as Python's Pool.terminate(): closes the pool, cancels every task,
  // kills the workers that are running one (their futures throw CancelledError, as do those of
  // the tasks not begun), and returns once every worker has exited and been reaped.
  void terminate() { detail::terminate(*core_); }
 private:
  template <class Pool, class R, class View, class F, bool Ordered>
  friend class ImapStream;
  friend class detail::PoolSurface<ProcessPool>;

  void stop(bool wait, bool cancel_pending) { detail::shutdown(*core_, wait, cancel_pending); }
  bool stop_until(detail::Clock::time_point deadline, bool cancel_pending) {
    return detail::shutdown_until(*core_, deadline, cancel_pending);
  }
  PoolStats activity() const { return detail::stats(*core_); }
  template <class F>
  static auto unpacking(F& f) {
    return detail::Unpacking<std::decay_t<F>>{f};
  }

  static ProcessPoolOptions options_with(std::size_t workers) {
    ProcessPoolOptions options;
    options.workers = workers;
    return options;
  }

  detail::ByteWriter& start_request(detail::Entry entry) {
    // A worker's copy of a pool object of its parent has no supervisor and no workers: using it
    // would wait forever. (A pool that a task creates in its worker is its own and works.)
    if (detail::in_worker_process()) detail::check_owner(*core_);
    detail::ByteWriter& request = detail::request_buffer();
    request.clear();
    request.write_raw(detail::code_offset(reinterpret_cast<const void*>(entry)));
    request.write_raw(std::uint64_t{0});  // flags: the pool may mark a queued request skipped
    return request;
  }

  template <class State, class R, class... StateArgs>
  Future<R> send(const detail::ByteWriter& request, StateArgs&&... state_args) {
    auto copy = [](std::byte* out, const void* context) {
      const auto& bytes = *static_cast<const detail::ByteWriter*>(context);
      std::memcpy(out, bytes.data(), bytes.size());
    };
    return send_from<State, R>({request.size(), copy, &request}, std::forward<StateArgs>(state_args)...);
  }

  template <class State, class R, class... StateArgs>
  Future<R> send_from(const detail::RequestSource& request, StateArgs&&... state_args) {
    auto task = std::make_unique<State>(core_, std::forward<StateArgs>(state_args)...);
    detail::submit_remote(*core_, request, task.get());
    return detail::FutureAccess::make(detail::StateRef<detail::State<R>>(task.release()));
  }

  // A map chunk of raw items, written into the ring in place: [entry][flags][f][count][items].
  template <class Fn, class T>
  struct RawChunk {
    const Fn* f;
    std::span<const T> items;

    std::size_t size() const noexcept { return 3 * sizeof(std::uint64_t) + sizeof(Fn) + items.size_bytes(); }
    static void write(std::byte* out, const void* context) {
      const auto& chunk = *static_cast<const RawChunk*>(context);
      const auto entry = detail::code_offset(reinterpret_cast<const void*>(&detail::map_entry<Fn, T>));
      const std::uint64_t flags = 0, count = chunk.items.size();
      std::memcpy(out, &entry, sizeof entry);
      std::memcpy(out + 8, &flags, sizeof flags);
      std::memcpy(out + 16, chunk.f, sizeof(Fn));
      std::memcpy(out + 16 + sizeof(Fn), &count, sizeof count);
      std::memcpy(out + 24 + sizeof(Fn), chunk.items.data(), chunk.items.size_bytes());
    }
  };

  template <class F, class T>
  auto submit_chunk(const std::shared_ptr<F>& f, std::vector<T> items) {
    detail::check_callable<F>();
    using R = std::invoke_result_t<F&, T&>;
    detail::check_value<T>();
    detail::check_value<R>();
    detail::ByteWriter& request = start_request(&detail::map_entry<F, T>);
    detail::encode_callable(request, *f);
    detail::encode_span(request, std::span<const T>(items));
    return send<detail::RemoteState<std::vector<R>>, std::vector<R>>(request);
  }

  template <bool Ordered, class F, class Range>
  auto make_imap(F&& f, Range&& range, std::size_t chunksize) {
    using View = std::views::all_t<Range>;
    using R = std::invoke_result_t<std::decay_t<F>&, std::ranges::range_value_t<Range>&>;
    static_assert(!std::is_void_v<R>, "imap needs a function that returns a value; use map for void functions");
    detail::check_callable<std::decay_t<F>>();
    return ImapStream<ProcessPool, R, View, std::decay_t<F>, Ordered>(*this, std::views::all(std::forward<Range>(range)),
                                                                       std::forward<F>(f), chunksize);
  }

  template <class F, class Range>
  auto map_by(F& f, Range&& range, detail::Clock::time_point deadline, std::size_t chunksize) {
    using T = std::ranges::range_value_t<Range>;
    if constexpr (std::ranges::contiguous_range<Range> && std::ranges::sized_range<Range>) {
      return map_span(f, std::span<const T>(std::ranges::data(range), std::ranges::size(range)), deadline, chunksize);
    } else {
      std::vector<T> items(std::ranges::begin(range), std::ranges::end(range));
      return map_span(f, std::span<const T>(items), deadline, chunksize);
    }
  }

  template <class F, class T>
  auto map_span(F& f, std::span<const T> items, detail::Clock::time_point deadline, std::size_t chunksize) {
    using Fn = std::decay_t<F>;
    detail::check_callable<Fn>();
    detail::check_value<T>();
    using R = std::invoke_result_t<Fn&, T&>;
    detail::check_value<R>();
    const std::size_t n = items.size();
    if (chunksize == 0) chunksize = auto_chunksize<T, R>(n, items.empty() ? nullptr : &items.front());
    // Allocated (and zero-filled) once the first chunks are on their way, see RemoteMapChunk.
    std::vector<detail::MapSlot<R>> out;
    std::atomic<detail::MapSlot<R>*> base{nullptr};
    auto allocate_output = [&] {
      if (base.load(std::memory_order_relaxed)) return;
      out.resize(std::is_void_v<R> ? 1 : std::max<std::size_t>(n, 1));
      base.store(out.data(), std::memory_order_release);
    };
    std::vector<Future<void>> chunks;
    chunks.reserve((n + chunksize - 1) / chunksize);
    auto progress = std::make_shared<MapProgress>((n + chunksize - 1) / chunksize);
    // This thread reads the results itself while it sends and spins, sparing the supervisor.
    detail::begin_collecting(*core_);
    bool collecting = true;
    try {
      for (std::size_t begin = 0; begin < n; begin += chunksize) {
        const std::size_t count = std::min(chunksize, n - begin);
        if constexpr (detail::kIsRaw<T> && detail::CallableTraveller<Fn>::kFixedBytes) {
          if (detail::in_worker_process()) detail::check_owner(*core_);
          const RawChunk<Fn, T> chunk{&f, items.subspan(begin, count)};
          chunks.push_back(send_from<detail::RemoteMapChunk<R>, void>({chunk.size(), &RawChunk<Fn, T>::write, &chunk},
                                                                       &base, begin, count));
        } else {
          detail::ByteWriter& request = start_request(&detail::map_entry<Fn, T>);
          detail::encode_callable(request, static_cast<const Fn&>(f));
          detail::encode_span(request, items.subspan(begin, count));
          chunks.push_back(send<detail::RemoteMapChunk<R>, void>(request, &base, begin, count));
        }
        if (chunks.size() == size()) allocate_output();  // every worker has a chunk to start on
        detail::StateBase* state = &detail::FutureAccess::state(chunks.back());
        state->on_ready([progress, state] { progress->chunk_done(state->phase() != detail::kValue); });
      }
      allocate_output();
      // One wait for the whole map, not one per chunk: a waiter spins before it sleeps, and
      // spinning once per chunk would take a core from the workers all along a long map.
      if (!progress->ready(progress.get())) detail::help_collect(*core_, &MapProgress::ready, progress.get(), deadline);
      collecting = false;
      detail::end_collecting(*core_);
      if (!progress->wait_until(*core_, deadline)) {
        detail::throw_timeout("ProcessPool::map_for: not every result arrived in time");
      }
      for (auto& chunk : chunks) {
        if (chunk.done()) chunk.get();  // the first failure, if any
      }
    } catch (...) {
      allocate_output();  // a chunk being delivered waits for it
      if (collecting) detail::end_collecting(*core_);
      // The chunks write into `out`: none may still be doing so when it goes.
      for (auto& chunk : chunks) {
        static_cast<detail::RemoteResult&>(static_cast<detail::RemoteMapChunk<R>&>(
                                               detail::FutureAccess::state(chunk)))
            .set_quiet_cancel();
        chunk.cancel();
      }
      for (auto& chunk : chunks) chunk.wait();
      throw;
    }
    if constexpr (std::is_void_v<R>) {
      return;
    } else {
      out.resize(n);  // it was allocated with at least one element, also for an empty input
      if constexpr (std::is_same_v<R, bool>) {
        return std::vector<bool>(out.begin(), out.end());
      } else if constexpr (!std::is_same_v<detail::MapSlot<R>, R>) {
        std::vector<R> results;
        results.reserve(n);
        for (const auto& slot : out) results.push_back(detail::ByteReader::load_raw<R>(slot.bytes));
        return results;
      } else {
        return out;
      }
    }
  }

  // Counts a map's chunks down; the caller sleeps until all are done or one has failed.
  struct MapProgress {
    explicit MapProgress(std::size_t chunks) : remaining(chunks), wake(chunks == 0 ? 1 : 0) {}
    void chunk_done(bool failed) noexcept {
      if (remaining.fetch_sub(1, std::memory_order_acq_rel) == 1 || failed) {
        wake.store(1, std::memory_order_release);
        detail::futex_wake_all(wake);
      }
    }
    static bool ready(const void* self) noexcept {
      return static_cast<const MapProgress*>(self)->wake.load(std::memory_order_acquire) != 0;
    }
    bool wait_until(detail::ProcessPoolCore& core, detail::Clock::time_point deadline) {
      if (!ready(this)) detail::help_collect(core, &MapProgress::ready, this, deadline);
      while (!ready(this) && detail::Clock::now() < deadline) detail::futex_wait(wake, 0, deadline);
      return ready(this);
    }

    std::atomic<std::size_t> remaining;
    std::atomic<std::uint32_t> wake;
  };

  // About 8 chunks per worker, each request (and, for fixed-size results, each chunk's results)
  // small enough for the ring: a larger one goes through a memory file of its own, ~3x slower
  // for 64 KiB items. An item that is not a fixed number of bytes is measured by encoding
  // `sample`, one of them.
  template <class T, class R>
  std::size_t auto_chunksize(std::size_t n, const T* sample = nullptr) const {
    std::size_t chunksize = detail::auto_chunksize(n, size());
    const std::size_t budget = detail::ring_message_bytes(*core_) - 64;
    if constexpr (detail::kIsRaw<T> && (std::is_void_v<R> || detail::kIsRaw<R>)) {
      chunksize = std::min(chunksize, std::max<std::size_t>(1, budget / std::max(sizeof(T), sizeof(detail::MapSlot<R>))));
    } else if (sample != nullptr) {
      detail::ByteWriter encoded;
      detail::encode(encoded, *sample);
      chunksize = std::min(chunksize, std::max<std::size_t>(1, budget / std::max<std::size_t>(1, encoded.size())));
    }
    return chunksize;
  }

  std::shared_ptr<detail::ProcessPoolCore> core_;
};

}  // namespace tandem
