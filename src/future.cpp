#include "tandem/future.hpp"

namespace tandem::detail {

void throw_no_state() { throw Error("Future: this handle has no shared state (default-constructed or moved from)"); }

void throw_timeout(const char* what) { throw TimeoutError(what); }

std::exception_ptr cancelled_error() { return std::make_exception_ptr(CancelledError("the task was cancelled")); }

void rethrow_outcome(const StateBase& state) {
  if (state.phase() == kCancelled) std::rethrow_exception(cancelled_error());
  std::rethrow_exception(state.error());
}

}  // namespace tandem::detail
