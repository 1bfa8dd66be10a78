// The queues behind ThreadPool's scheduler (internal to src/).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "tandem/detail/future_state.hpp"

namespace tandem::detail {

// Guards a queue for the few instructions of a push or pop. A futex mutex would put a contended
// submitter to sleep for ~50 us per collision; spinning (then yielding, in case the holder was
// preempted on an oversubscribed core) keeps the hand-over in the sub-microsecond range.
class SpinLock {
 public:
  void lock() noexcept {
    for (int spins = 0; locked_.exchange(true, std::memory_order_acquire); ++spins) {
      while (locked_.load(std::memory_order_relaxed)) {
        if (++spins < 128) {
          cpu_relax();
        } else {
          std::this_thread::yield();
        }
      }
    }
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

// A spinlock-guarded deque with a lock-free size hint, so idle workers can look for work without
// taking locks. `size` is written under the lock with seq_cst so that a sleeper announcing
// itself and a submitter checking for sleepers can never both miss each other (see sleep()).
class alignas(64) TaskQueue {
 public:
  void push_back(Runnable* task) {
    std::lock_guard lock(mutex_);
    tasks_.push_back(task);
    size_.store(tasks_.size(), std::memory_order_seq_cst);
  }
  // Closing happens under the lock, so a push either lands before it or fails.
  bool push_back_unless_closed(Runnable* task) {
    std::lock_guard lock(mutex_);
    if (closed_) return false;
    tasks_.push_back(task);
    size_.store(tasks_.size(), std::memory_order_seq_cst);
    return true;
  }
  void close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  Runnable* pop_back() {
    if (empty_hint()) return nullptr;
    std::lock_guard lock(mutex_);
    if (tasks_.empty()) return nullptr;
    Runnable* task = tasks_.back();
    tasks_.pop_back();
    size_.store(tasks_.size(), std::memory_order_relaxed);
    return task;
  }
  Runnable* pop_front() {
    if (empty_hint()) return nullptr;
    std::lock_guard lock(mutex_);
    if (tasks_.empty()) return nullptr;
    Runnable* task = tasks_.front();
    tasks_.pop_front();
    size_.store(tasks_.size(), std::memory_order_relaxed);
    return task;
  }
  // Moves up to `max` tasks from the front into `into` (oldest first); returns how many.
  std::size_t take_front(Runnable** into, std::size_t max) {
    if (empty_hint()) return 0;
    std::lock_guard lock(mutex_);
    const std::size_t n = std::min(max, tasks_.size());
    for (std::size_t i = 0; i < n; ++i) {
      into[i] = tasks_.front();
      tasks_.pop_front();
    }
    size_.store(tasks_.size(), std::memory_order_relaxed);
    return n;
  }
  std::deque<Runnable*> take_all() {
    std::lock_guard lock(mutex_);
    std::deque<Runnable*> all;
    all.swap(tasks_);
    size_.store(0, std::memory_order_relaxed);
    return all;
  }
  bool empty_hint() const noexcept { return size_.load(std::memory_order_relaxed) == 0; }
  std::size_t size_seq_cst() const noexcept { return size_.load(std::memory_order_seq_cst); }
  std::size_t size_hint() const noexcept { return size_.load(std::memory_order_relaxed); }

 private:
  SpinLock mutex_;
  std::deque<Runnable*> tasks_;
  bool closed_ = false;
  std::atomic<std::size_t> size_{0};
};


// The queue for submissions from outside the pool. A bounded multi-producer multi-consumer ring
// (each slot carries a sequence number that says whose turn it is) keeps a submitter and the
// workers off each other's cache lines: with a locked queue, the submitter spent most of its
// time waiting for workers that grabbed the lock for every single task. When the ring is full,
// tasks go to a locked overflow queue until it drains, so submit never blocks.
class InjectionQueue {
 public:
  InjectionQueue() : slots_(std::make_unique<Slot[]>(kCapacity)) {
    for (std::size_t i = 0; i < kCapacity; ++i) slots_[i].turn.store(i, std::memory_order_relaxed);
  }

  // False when the queue was closed.
  bool push(Runnable* task) {
    if (!overflowing_.load(std::memory_order_relaxed)) {
      switch (try_push_ring(task)) {
        case Push::done:
          return true;
        case Push::closed:
          return false;
        case Push::full:
          overflowing_.store(true, std::memory_order_relaxed);
          break;
      }
    }
    return overflow_.push_back_unless_closed(task);
  }

  // One task from the ring, or else up to `max` from the overflow (one lock round for many);
  // oldest first. Returns how many.
  std::size_t take(Runnable** into, std::size_t max) {
    if (Runnable* task = try_pop_ring()) {
      into[0] = task;
      return 1;
    }
    if (overflow_.empty_hint()) return 0;
    const std::size_t n = overflow_.take_front(into, max);
    if (overflow_.empty_hint()) overflowing_.store(false, std::memory_order_relaxed);
    return n;
  }

  // After close() every push fails; a push that got in before is in the ring or the overflow.
  void close() {
    tail_.fetch_or(kClosedBit, std::memory_order_seq_cst);
    overflow_.close();
  }

  std::deque<Runnable*> take_all() {
    std::deque<Runnable*> all = overflow_.take_all();
    while (Runnable* task = try_pop_ring()) all.push_back(task);
    return all;
  }

  // Whether a task looks ready, without reading tail_: the submitter writes tail_ on every push,
  // and workers polling it would pull that cache line away from the submitter each time.
  bool ready_hint() const noexcept {
    const std::size_t head = head_.load(std::memory_order_relaxed);
    return slots_[head % kCapacity].turn.load(std::memory_order_relaxed) == head + 1 || !overflow_.empty_hint();
  }
  // Counts a slot claimed but not yet filled, so a worker about to sleep waits for it instead.
  bool empty_seq_cst() const noexcept {
    return ring_size(std::memory_order_seq_cst) == 0 && overflow_.size_seq_cst() == 0;
  }
  std::size_t size_hint() const noexcept { return ring_size(std::memory_order_relaxed) + overflow_.size_hint(); }

 private:
  static constexpr std::size_t kCapacity = 4096;
  static constexpr std::size_t kClosedBit = std::size_t{1} << 63;

  struct Slot {
    std::atomic<std::size_t> turn;
    Runnable* task = nullptr;
  };
  enum class Push { done, full, closed };

  Push try_push_ring(Runnable* task) {
    std::size_t tail = tail_.load(std::memory_order_relaxed);
    for (;;) {
      if (tail & kClosedBit) return Push::closed;
      Slot& slot = slots_[tail % kCapacity];
      const std::size_t turn = slot.turn.load(std::memory_order_acquire);
      const auto lag = static_cast<std::ptrdiff_t>(turn - tail);
      if (lag == 0) {
        if (tail_.compare_exchange_weak(tail, tail + 1, std::memory_order_seq_cst)) {
          slot.task = task;
          slot.turn.store(tail + 1, std::memory_order_release);
          return Push::done;
        }
      } else if (lag < 0) {
        return Push::full;  // the slot still holds a task from one lap ago
      } else {
        tail = tail_.load(std::memory_order_relaxed);
      }
    }
  }

  Runnable* try_pop_ring() {
    std::size_t head = head_.load(std::memory_order_relaxed);
    for (;;) {
      Slot& slot = slots_[head % kCapacity];
      const std::size_t turn = slot.turn.load(std::memory_order_acquire);
      const auto lag = static_cast<std::ptrdiff_t>(turn - (head + 1));
      if (lag == 0) {
        if (head_.compare_exchange_weak(head, head + 1, std::memory_order_relaxed)) {
          Runnable* task = slot.task;
          slot.turn.store(head + kCapacity, std::memory_order_release);
          return task;
        }
      } else if (lag < 0) {
        return nullptr;  // empty, or the producer has claimed the slot but not filled it yet
      } else {
        head = head_.load(std::memory_order_relaxed);
      }
    }
  }

  std::size_t ring_size(std::memory_order order) const noexcept {
    const std::size_t tail = tail_.load(order) & ~kClosedBit;
    const std::size_t head = head_.load(order);
    return tail > head ? tail - head : 0;
  }

  std::unique_ptr<Slot[]> slots_;
  alignas(64) std::atomic<std::size_t> tail_{0};
  alignas(64) std::atomic<std::size_t> head_{0};
  alignas(64) std::atomic<bool> overflowing_{false};
  TaskQueue overflow_;
};

}  // namespace tandem::detail
