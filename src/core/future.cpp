#include "tandem/future.hpp"

#include <chrono>
#include <thread>

namespace tandem::detail {

void throw_no_state() {
  throw Error("Future: this handle has no shared state (default-constructed, moved from, or its value was taken by "
              "get() on an rvalue)");
}
bool become_sole_handle(const StateBase& state) {
  const auto until = Clock::now() + std::chrono::milliseconds(50);
  while (!state.sole_handle()) {
    if (Clock::now() >= until) return false;
    std::this_thread::yield();
  }
  return true;
}

void throw_value_taken() {
  throw Error("Future: the value was moved out by get() on an rvalue copy of this future (std::move(f).get())");
}

void throw_timeout(const char* what) { throw TimeoutError(what); }

std::exception_ptr cancelled_error() { return std::make_exception_ptr(CancelledError("the task was cancelled")); }

void rethrow_outcome(const StateBase& state) {
  if (state.phase() == kCancelled) std::rethrow_exception(cancelled_error());
  std::rethrow_exception(state.error());
}

}  // namespace tandem::detail
