// What tandem's locks, conditions, queues and futures tell the pitfall diagnostics
// (diagnostics.hpp) while they are on: which locks an agent holds, in what order it took them,
// and what it waits for. Off, every hook is behind one relaxed load of `tracking_on`.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>


namespace tandem::detail {

// Set by diagnostics::enable, cleared by diagnostics::disable: the only switch the hot paths read.
extern std::atomic<bool> tracking_on_flag;
inline bool tracking_on() noexcept { return tracking_on_flag.load(std::memory_order_relaxed); }

// A shared object's name as the diagnostics print it, kept beside its state (up to 47
// characters are kept).
struct ObjectName {
  static constexpr std::size_t kCapacity = 47;
  explicit ObjectName(std::string_view name) {
    // copy(), not memcpy: an empty view's data() may be null.
    text[name.copy(text, kCapacity)] = '\0';
  }
  std::string_view view() const noexcept { return text; }
  char text[kCapacity + 1];
};

// A key that names one shared object program-wide (all processes), for the diagnostics' tables.
std::uint64_t new_object_key() noexcept;

// What a blocked agent waits for. A lock waiter waits for the lock's holder; the others wait for
// any agent that has done the releasing operation on the same object before (put into the queue
// for a getter, got from it for a putter, notified the condition, runs the future's task).
enum class WaitKind : std::uint32_t { none, lock, queue_get, queue_put, condition, future };

// A lock's name as the diagnostics print it: the user's, or "lock #<key>".
struct LockLabel {
  std::uint64_t key;
  std::string_view name;  // may be empty
};

// Before a blocking acquisition: records the order from each held lock to this one and reports
// (or aborts on) an order that closes a cycle. Then call lock_acquired (also after a try_lock).
void check_lock_order(LockLabel lock);
void lock_acquired(LockLabel lock);
void lock_released(std::uint64_t key);

// What an agent's slot says it waits for; kept aside while a nested wait replaces it.
struct WaitRecord {
  std::uint32_t kind = 0;  // WaitKind
  std::uint32_t timed = 0;
  std::uint64_t key = 0;
  std::int64_t since_ns = 0;
};

// Marks the calling agent as blocked on `key` for its lifetime (then restores what it waited for
// before, for a wait nested in another one's code). `timed` waits end by
// themselves, so they never count as deadlocked; a timed lock wait still counts for starvation.
class TrackedWait {
 public:
  TrackedWait(WaitKind kind, std::uint64_t key, std::string_view name, bool timed);
  TrackedWait(const TrackedWait&) = delete;
  TrackedWait& operator=(const TrackedWait&) = delete;
  ~TrackedWait();

 private:
  WaitRecord outer_;
  bool active_ = false;
};

// The calling agent is releasing waiters of `kind` on `key` (see WaitKind): call it before the
// release becomes visible, so that a wait that began after it cannot have missed the release.
// Cheap once recorded: a per-thread cache answers repeats.
void note_releaser(WaitKind kind, std::uint64_t key);

// The key of a future whose state lives at `state` in this process.
std::uint64_t future_key(const void* state) noexcept;

// The key under which a ProcessPool worker runs its `index`-th request: the pool computes it for
// a waiter on that request's future, the worker for itself.
std::uint64_t pool_request_key(std::int32_t worker_pid, std::uint64_t index) noexcept;

// Marks the calling agent, for its lifetime, as running the pool task of the future `key`: the
// agent a waiter on that future waits for.
class TrackedTask {
 public:
  explicit TrackedTask(std::uint64_t key);
  TrackedTask(const TrackedTask&) = delete;
  TrackedTask& operator=(const TrackedTask&) = delete;
  ~TrackedTask();

 private:
  std::uint64_t previous_ = 0;
  bool active_ = false;
};

}  // namespace tandem::detail
