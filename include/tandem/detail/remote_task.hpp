// A task that runs in a worker process: how its callable and arguments are written into a
// request, which function the worker calls to run it (an "entry", found by its offset in the
// program's code), and the parent-side states that receive its result.
//
// A request is [entry offset: 8 bytes][flags: 8 bytes][callable][arguments...]; a response is
// [status: 8 bytes][result | exception type and message].
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stop_token>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "tandem/detail/codec.hpp"
#include "tandem/detail/future_state.hpp"
#include "tandem/detail/travelling_callable.hpp"

namespace tandem::detail {

using Entry = void (*)(ByteReader& in, ByteWriter& out);

// The entry a request from another process names first, by its code offset.
inline Entry read_entry(ByteReader& in) { return function_at<Entry>(in.read_raw<std::int64_t>()); }

// `large`: the response is in a memory file of its own (a pool-internal detail, see worker.hpp).
enum class ResponseStatus : std::uint64_t { value = 1, exception = 2, skipped = 3, large = 4 };

template <class F, class... Args>
inline constexpr bool kTakesToken = std::is_invocable_v<F, std::stop_token, Args...>;

template <class F, class... Args>
decltype(auto) invoke_task(F& f, Args&&... args) {
  // In a worker process, nothing can ask a running task to stop (cancel() kills its worker):
  // a callable that takes a stop_token gets one that never fires.
  if constexpr (kTakesToken<F, Args...>) {
    return std::invoke(f, std::stop_token(), std::forward<Args>(args)...);
  } else {
    return std::invoke(f, std::forward<Args>(args)...);
  }
}

// Worker side of submit(f, args...).
template <class F, class... Args>
void submit_entry(ByteReader& in, ByteWriter& out) {
  F f = decode_callable<F>(in);
  std::tuple<Args...> args{decode<Args>(in)...};  // braces: decoded left to right
  using R = decltype(std::apply([&f](Args&... a) -> decltype(auto) { return invoke_task(f, std::move(a)...); }, args));
  if constexpr (std::is_void_v<R>) {
    std::apply([&f](Args&... a) { invoke_task(f, std::move(a)...); }, args);
  } else {
    encode(out, std::apply([&f](Args&... a) -> R { return invoke_task(f, std::move(a)...); }, args));
  }
}

// Worker side of one chunk of map/imap: f over a sequence of T, results as a std::vector<R>.
template <class F, class T>
void map_entry(ByteReader& in, ByteWriter& out) {
  F f = decode_callable<F>(in);
  using R = std::invoke_result_t<F&, T&>;
  if constexpr (std::is_void_v<R>) {
    auto items = decode<std::vector<T>>(in);
    for (auto& item : items) f(item);
    out.write_raw(std::uint64_t{items.size()});
  } else if constexpr (kIsRaw<T>) {
    const auto count = in.read_raw<std::uint64_t>();
    if (count > in.left() / sizeof(T)) throw_malformed("a chunk is longer than its message");
    if constexpr (kIsRaw<R>) {
      out.write_raw(count);
      // Items and results are copied through locals: the ring and the buffer promise no alignment.
      const std::byte* items = in.take(static_cast<std::size_t>(count) * sizeof(T));
      std::byte* results = out.extend(static_cast<std::size_t>(count) * sizeof(R));
      for (std::size_t i = 0; i < count; ++i) {
        T item = ByteReader::load_raw<T>(items + i * sizeof(T));
        const R result = f(item);
        std::memcpy(results + i * sizeof(R), &result, sizeof(R));
      }
    } else {
      std::vector<R> results;
      results.reserve(count);
      for (std::uint64_t i = 0; i < count; ++i) {
        T item = in.read_raw<T>();
        results.push_back(f(item));
      }
      encode(out, results);
    }
  } else {
    auto items = decode<std::vector<T>>(in);
    std::vector<R> results;
    results.reserve(items.size());
    for (auto& item : items) results.push_back(f(item));
    encode(out, results);
  }
}

class ProcessPoolCore;
// Spins while collecting results for up to the spin budget, or until ready(context) holds.
void help_collect(ProcessPoolCore& core, bool (*ready)(const void*), const void* context, Clock::time_point deadline);
// While a thread counts as collecting, workers do not wake the supervisor for their results:
// that thread is about to read them. It must stop counting (which reads once more) before it
// sleeps.
void begin_collecting(ProcessPoolCore& core) noexcept;
void end_collecting(ProcessPoolCore& core);
inline bool state_ready(const void* state) noexcept { return static_cast<const StateBase*>(state)->ready(); }
class RemoteResult;
// `task` was cancelled: a worker that has it queued skips it; one that is running it is killed
// (and replaced) unless the cancel is quiet.
void cancel_remote(ProcessPoolCore& core, RemoteResult& task) noexcept;
// The diagnostics' key of the worker request that runs `task` (pool_request_key), or of the task
// itself while no worker has it.
std::uint64_t runner_key(ProcessPoolCore& core, const RemoteResult& task);
// Whether a worker has begun `task` (and its answer has not been read yet).
bool worker_runs(ProcessPoolCore& core, const RemoteResult& task);

// What the pool keeps for each task in flight. The pool's collector stores the outcome while it
// reads the response in place (store_*), and completes the state after leaving its lock.
class RemoteResult {
 public:
  explicit RemoteResult(std::shared_ptr<ProcessPoolCore> core) noexcept : core_(std::move(core)) {}
  virtual StateBase& state() noexcept = 0;

  // Claims the state and decodes the worker's result into it; false if it was cancelled.
  bool store_result(ByteReader& in) noexcept {
    if (!state().try_claim()) return false;
    try {
      decode_into(in);
      outcome_ = kValue;
    } catch (...) {
      state().store_error(std::current_exception());
      outcome_ = kError;
    }
    return true;
  }
  bool store_error(std::exception_ptr error) noexcept {
    if (!state().try_claim()) return false;
    state().store_error(std::move(error));
    outcome_ = kError;
    return true;
  }
  void finish() noexcept { state().complete(outcome_); }

  // map's clean-up cancels chunks without killing the workers that run them (queued ones are
  // still skipped).
  void set_quiet_cancel() noexcept { quiet_cancel_.store(true, std::memory_order_relaxed); }
  bool quiet_cancel() const noexcept { return quiet_cancel_.load(std::memory_order_relaxed); }

 protected:
  ~RemoteResult() = default;
  virtual void decode_into(ByteReader& in) = 0;
  ProcessPoolCore& core() const noexcept { return *core_; }
  void cancelled() noexcept { cancel_remote(*core_, *this); }

 private:
  std::shared_ptr<ProcessPoolCore> core_;
  Phase outcome_ = kError;
  std::atomic<bool> quiet_cancel_{false};
};

// A State<R> whose outcome a worker process sends: waiting on it helps collect responses, and
// cancelling it tells the pool. Starts with two references: the Future's and the pool's.
template <class R>
class RemoteStateOf : public State<R>, public RemoteResult {
 public:
  explicit RemoteStateOf(std::shared_ptr<ProcessPoolCore> core) : State<R>(2), RemoteResult(std::move(core)) {}

  StateBase& state() noexcept override { return *this; }
  bool wait_until(Clock::time_point deadline) const override {
    if (this->ready()) return true;
    std::optional<TrackedWait> tracked;
    if (tracking_on()) [[unlikely]] {
      tracked.emplace(WaitKind::future, runner_key(core(), *this), std::string_view(),
                      deadline != Clock::time_point::max());
    }
    help_collect(core(), &state_ready, static_cast<const StateBase*>(this), deadline);
    return this->sleep_until_ready(deadline);
  }
  void on_cancelled() noexcept override { cancelled(); }
  bool running() const override {
    return this->phase() == kRunning || (this->phase() == kPending && worker_runs(core(), *this));
  }
};

// The state behind a ProcessPool future.
template <class R>
class RemoteState final : public RemoteStateOf<R> {
 public:
  using RemoteStateOf<R>::RemoteStateOf;

 private:
  void decode_into(ByteReader& in) override {
    if constexpr (std::is_void_v<R>) {
      this->store_value();
    } else {
      this->store_value(decode<R>(in));
    }
  }
};

// The bytes of a trivially copyable R that has no default constructor: map allocates its output
// before results arrive, and the bytes are the value once they have (implicit-lifetime type).
template <class R>
struct alignas(R) ResultBytes {
  std::byte bytes[sizeof(R)];
};

// Where map stores a result: vector<bool> packs bits, so bools are gathered as bytes first, as
// are results without a default constructor. (A void map stores nothing; its slots are
// placeholders.)
template <class R>
using MapSlot = std::conditional_t<std::is_same_v<R, bool> || std::is_void_v<R>, unsigned char,
                                   std::conditional_t<std::is_default_constructible_v<R>, R, ResultBytes<R>>>;

// One chunk of ProcessPool::map: decodes its results straight into the caller's output vector,
// at `offset` from `*base`. The caller allocates that vector after sending its first chunks, so
// that zero-filling it overlaps the workers' compute; a result that arrives earlier waits for it.
template <class R>
class RemoteMapChunk final : public RemoteStateOf<void> {
 public:
  RemoteMapChunk(std::shared_ptr<ProcessPoolCore> core, const std::atomic<MapSlot<R>*>* base, std::size_t offset,
                 std::size_t count)
      : RemoteStateOf<void>(std::move(core)), base_(base), offset_(offset), count_(count) {}

 private:
  void decode_into(ByteReader& in) override {
    if constexpr (std::is_void_v<R>) {
      if (in.read_raw<std::uint64_t>() != count_) throw_malformed("a map chunk came back with the wrong count");
    } else {
      MapSlot<R>* base;
      while (!(base = base_->load(std::memory_order_acquire))) cpu_relax();
      MapSlot<R>* out = base + offset_;
      if constexpr (kIsRaw<R>) {
        if (in.read_raw<std::uint64_t>() != count_) {
          throw_malformed("a map chunk came back with the wrong number of results");
        }
        in.read(out, count_ * sizeof(R));
      } else {
        auto results = decode<std::vector<R>>(in);
        if (results.size() != count_) throw_malformed("a map chunk came back with the wrong number of results");
        for (std::size_t i = 0; i < count_; ++i) out[i] = std::move(results[i]);
      }
    }
  }

  const std::atomic<MapSlot<R>*>* base_;
  std::size_t offset_;
  std::size_t count_;
};

}  // namespace tandem::detail
