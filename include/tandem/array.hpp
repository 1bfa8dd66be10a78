// Array<T>: a fixed number of trivially copyable Ts in shared memory with the RLock that guards
// them, Python's multiprocessing.Array. Single reads and writes take the lock; with_lock gives
// the whole span under it.
//
//   tandem::Array<double> totals(8);
//   pool.submit([](tandem::Array<double> t, int i) { t.store(i, 1.5); }, totals, 3);
//   totals.with_lock([](std::span<double> all) { std::ranges::sort(all); });
//
// An Array is a handle: copies are the same elements, and it travels to other agents as a Lock
// does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <mutex>
#include <type_traits>
#include <utility>
#include <vector>

#include "tandem/detail/holds_address.hpp"
#include "tandem/detail/traveller.hpp"
#include "tandem/detail/shared_state.hpp"
#include "tandem/error.hpp"
#include "tandem/lock.hpp"

namespace tandem {

namespace detail {
// The elements follow this header in the same memory.
struct ArrayState {
  static constexpr std::uint32_t kTag = 0x41525259;  // "ARRY"
  ArrayState(std::uint64_t count, std::uint64_t element_size)
      : lock(std::in_place, RobustMutex::Kind::recursive, std::string_view()), size(count), element_bytes(element_size) {}
  Tagged<LockState> lock;
  std::uint64_t size;
  std::uint64_t element_bytes;
};
}  // namespace detail

template <class T>
class Array {
  static_assert(std::is_trivially_copyable_v<T> && !detail::kHoldsAddress<T>,
                "tandem::Array<T> holds Ts in shared memory: T must be trivially copyable and hold no pointer, reference or view");
  static constexpr std::size_t kElementsAt =
      (sizeof(detail::Tagged<detail::ArrayState>) + alignof(T) - 1) / alignof(T) * alignof(T);

 public:
  // `size` elements, each `initial`.
  explicit Array(std::size_t size, T initial = T{})
      : Array(detail::SharedState<detail::ArrayState>::create(bytes_for(size), size, sizeof(T))) {
    for (T& element : elements()) element = initial;
  }
  // One element per value of `values`.
  explicit Array(std::span<const T> values) : Array(values.size()) {
    std::copy(values.begin(), values.end(), elements().begin());
  }

  std::size_t size() const noexcept { return size_; }
  // tandem::Error if `index` >= size().
  T load(std::size_t index) {
    check(index);
    LockGuard guard(lock_);
    return elements()[index];
  }
  void store(std::size_t index, T value) {
    check(index);
    LockGuard guard(lock_);
    elements()[index] = value;
  }
  std::vector<T> to_vector() {
    LockGuard guard(lock_);
    return {elements().begin(), elements().end()};
  }
  // f(std::span<T>) under the lock; returns what f returns.
  template <class F>
  decltype(auto) with_lock(F&& f) {
    LockGuard guard(lock_);
    return std::forward<F>(f)(elements());
  }
  RLock& get_lock() noexcept { return lock_; }
  // After a call here threw OwnerDied in this thread (which then holds the lock): repair(span)
  // runs under it, marked consistent, and the lock is released (also if repair throws).
  template <class F>
  void recover(F&& repair) {
    lock_.mark_consistent();
    std::unique_lock<RLock> held(lock_, std::adopt_lock);  // the hold OwnerDied left, released at the end
    std::forward<F>(repair)(elements());
  }

 private:
  friend struct detail::HandleAccess;
  using SharedStateType = detail::SharedState<detail::ArrayState>;
  // The size is read from shared memory once, checked, and kept: another process could change
  // the shared copy later.
  explicit Array(detail::SharedState<detail::ArrayState> state)
      : state_(std::move(state)),
        lock_(detail::LockMaker<detail::RobustMutex::Kind::recursive>::from(
            state_.inner(&detail::ArrayState::lock))),
        size_(static_cast<std::size_t>(state_->size)) {
    const std::size_t memory = state_.memory().size();
    const std::size_t room = memory > kElementsAt ? memory - kElementsAt : 0;
    if (state_->element_bytes != sizeof(T) || state_->size > room / sizeof(T)) {
      detail::throw_malformed("an Array<T> handle names elements of another size or count");
    }
  }
  static std::size_t bytes_for(std::size_t size) {
    if (size > (std::numeric_limits<std::size_t>::max() - kElementsAt) / sizeof(T)) {
      throw Error("Array: " + std::to_string(size) + " elements do not fit in memory");
    }
    return kElementsAt + size * sizeof(T);
  }
  std::span<T> elements() const noexcept {
    return {std::launder(reinterpret_cast<T*>(state_.memory().data() + kElementsAt)), size()};
  }
  void check(std::size_t index) const {
    if (index >= size()) {
      throw Error("Array: index " + std::to_string(index) + " out of range (size " + std::to_string(size()) + ")");
    }
  }

  detail::SharedState<detail::ArrayState> state_;
  RLock lock_;
  std::size_t size_;
};

}  // namespace tandem
