// tandem's failures, all derived from tandem::Error so one catch clause covers the library.
//
//   try { pool.submit(f).get_for(1s); } catch (const tandem::TimeoutError&) { ... }
#pragma once

#include <exception>
#include <functional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>

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

// A process-pool worker died while running the task: a crash (segfault, abort), exit() from the
// task, or a kill from outside, or the pool killed it because it broke the pool's protocol (a
// task scribbled over its worker's memory). The worker has been replaced; other tasks go on.
class WorkerLost : public Error {
 public:
  // `signal` is the signal that killed the worker (0 if it exited), `exit_status` its exit
  // status (-1 if a signal killed it); `cause`, when the pool knows more, says what happened.
  WorkerLost(long pid, int signal, int exit_status, const std::string& cause = {});

  long pid() const noexcept { return pid_; }
  int signal() const noexcept { return signal_; }
  int exit_status() const noexcept { return exit_status_; }

 private:
  long pid_;
  int signal_;
  int exit_status_;
};

// A process-pool task ran longer than the pool's task_timeout; its worker was killed and replaced.
// A TimeoutError, so that one catch covers every way a result can fail to arrive in time.
class TaskTimeout : public TimeoutError {
 public:
  using TimeoutError::TimeoutError;
};

// A process-pool task allocated past the pool's memory_limit (its allocation failed).
class MemoryLimitExceeded : public Error {
 public:
  using Error::Error;
};

// A lock's previous holder (a thread or a process) died holding it. The caller now holds the
// lock: it repairs what the lock protects, calls the lock's mark_consistent(), and unlocks.
// Unlocked without mark_consistent(), the lock is unusable from then on (LockUnrecoverable).
class OwnerDied : public Error {
 public:
  using Error::Error;
};

// A lock whose holder died was released without being marked consistent: it cannot be taken.
class LockUnrecoverable : public Error {
 public:
  using Error::Error;
};

// A Queue or Pipe was closed: put on it, or get from it once it is empty.
class QueueClosed : public Error {
 public:
  using Error::Error;
};

// A Barrier could not trip: a participant died, a wait timed out, or it was aborted or reset.
class BrokenBarrier : public Error {
 public:
  using Error::Error;
};

namespace detail {
std::string demangle(const char* mangled_name);
// Inside a catch block: the current exception's demangled type name and what() text.
std::pair<std::string, std::string> describe_current_exception();
// `text` cut to its first `limit` bytes with a note of its full length, when it is longer: what
// crosses between processes is bounded, and the reader is told what was left out.
std::string shortened(const std::string& text, std::size_t limit);
using RemoteExceptionFactory = std::function<std::exception_ptr(const std::string& message)>;
void register_remote_exception(std::string type_name, RemoteExceptionFactory factory);
}  // namespace detail

// An exception thrown in another process arrives as RemoteError, or as its own type `E` once
// registered here (in the receiving process): `E` must be constructible from a std::string (its
// what() text). The std exceptions of <stdexcept> and tandem's own are registered already.
//
//   tandem::register_remote_exception<ParseError>();   // get() now throws ParseError
template <class E>
void register_remote_exception() {
  static_assert(std::is_constructible_v<E, std::string>,
                "register_remote_exception<E>: E must be constructible from a std::string message");
  detail::register_remote_exception(detail::demangle(typeid(E).name()),
                                    [](const std::string& message) { return std::make_exception_ptr(E(message)); });
}

// The exception to rethrow for one that a worker process reported as (type name, message).
std::exception_ptr remote_exception(const std::string& type_name, const std::string& message);

}  // namespace tandem
