// Small pieces shared by the pull-style ranges (as_completed, imap): an iterator over anything
// with `std::optional<T> next()`, and a queue that completing threads push into.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <iterator>
#include <mutex>
#include <optional>

#include "tandem/detail/future_state.hpp"

namespace tandem::detail {

// A pull-style input range over anything with `std::optional<T> next()`.
template <class Owner, class T>
class NextIterator {
 public:
  using value_type = T;
  using difference_type = std::ptrdiff_t;
  NextIterator() = default;
  explicit NextIterator(Owner* owner) : owner_(owner) { ++*this; }
  T& operator*() const { return *current_; }
  NextIterator& operator++() {
    current_ = owner_->next();
    return *this;
  }
  void operator++(int) { ++*this; }
  bool operator==(std::default_sentinel_t) const { return !current_; }

 private:
  Owner* owner_ = nullptr;
  mutable std::optional<T> current_;
};

// Completed futures (or their indexes) handed from completing threads to one consumer.
template <class T>
class Inbox {
 public:
  void push(T item) {
    {
      std::lock_guard lock(mutex_);
      items_.push_back(std::move(item));
      count_.fetch_add(1, std::memory_order_release);
    }
    futex_wake_all(count_);
  }
  bool empty() const noexcept { return count_.load(std::memory_order_acquire) == 0; }
  // Nullopt when nothing arrived before `deadline`.
  std::optional<T> pop(Clock::time_point deadline) {
    const bool arrived =
        block_until([this] { return count_.load(std::memory_order_acquire) != 0; },
                    [this](Clock::time_point d) { futex_wait(count_, 0, d); }, deadline);
    if (!arrived) return std::nullopt;
    std::lock_guard lock(mutex_);
    T item = std::move(items_.front());
    items_.pop_front();
    count_.fetch_sub(1, std::memory_order_relaxed);
    return item;
  }

 private:
  std::mutex mutex_;
  std::deque<T> items_;
  std::atomic<std::uint32_t> count_{0};
};

}  // namespace tandem::detail
