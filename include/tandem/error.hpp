// tandem's failures, all derived from tandem::Error so one catch clause covers the library.
//
//   try { pool.submit(f).get_for(1s); } catch (const tandem::TimeoutError&) { ... }
#pragma once

#include <stdexcept>
#include <string>

namespace tandem {

// Base of every exception tandem throws on its own account.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A blocking call with a timeout or deadline ran out of time.
class TimeoutError : public Error {
 public:
  using Error::Error;
};

// The result was cancelled before it was produced (Future::cancel, pool shutdown, map failure).
class CancelledError : public Error {
 public:
  using Error::Error;
};

// Work was submitted to a pool that is shut down or shutting down.
class PoolClosed : public Error {
 public:
  using Error::Error;
};

// The producing side (a Promise) was destroyed without ever setting a result.
class BrokenPromise : public Error {
 public:
  using Error::Error;
};

// An exception that was thrown in another process. It carries the original exception's type
// name (demangled) and message, since the object itself cannot cross the address-space boundary.
class RemoteError : public Error {
 public:
  RemoteError(std::string type_name, std::string message);

  const std::string& type_name() const noexcept { return type_name_; }
  const std::string& message() const noexcept { return message_; }

 private:
  std::string type_name_;
  std::string message_;
};

}  // namespace tandem
