// Process: a child process as a processing agent, with the members of Python's
// multiprocessing.Process and the same interface as tandem::Thread.
//
//   tandem::Process p([](int n) { risky(n); }, 42);  p.start();  p.join();  p.exitcode();  // 0
//
// The child is a fork of this process: it sees a copy of this process's memory as it was at
// start(), runs the callable, and exits with code 0; if the callable throws, its exception's type
// name and message travel back through a pipe (exception() returns a tandem::RemoteError) and the
// exit code is 1. Killed by a signal, exitcode() is minus the signal number, as in Python. The
// child never runs this process's atexit handlers or static destructors.
//
// fork() copies only the calling thread: start processes before starting threads, or keep the
// child's work free of locks other threads may hold (later releases add forkserver and spawn).
//
// Destruction: a started, non-daemon child is waited for; a daemon child is sent SIGTERM, then
// SIGKILL after a second, and reaped. Either way no zombie remains.
#pragma once

#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "tandem/agent.hpp"
#include "tandem/detail/wait.hpp"

namespace tandem {

namespace detail {
struct ProcessState;
}

class Process {
 public:
  template <class F, class... Args>
    requires(!std::is_same_v<std::decay_t<F>, AgentOptions>)
  explicit Process(F&& f, Args&&... args)
      : Process(AgentOptions{}, std::forward<F>(f), std::forward<Args>(args)...) {}
  template <class F, class... Args>
  Process(AgentOptions options, F&& f, Args&&... args)
      : Process(std::move(options), detail::make_agent_body(std::forward<F>(f), std::forward<Args>(args)...)) {}

  Process(Process&&) noexcept;
  Process& operator=(Process&&) noexcept;
  ~Process();

  // Forks the child; tandem::Error if started before or if fork fails.
  void start();
  // Waits for the child to exit and reaps it. tandem::Error before start() or from the child.
  void join();
  // join() with a timeout: false if the child is still running after `timeout`.
  template <class Rep, class Period>
  bool join_for(std::chrono::duration<Rep, Period> timeout) {
    return join_until(detail::Clock::now() + std::chrono::ceil<detail::Clock::duration>(timeout));
  }
  bool is_alive() const;

  const std::string& name() const;
  void set_name(std::string name);  // before start()
  bool daemon() const;
  void set_daemon(bool daemon);  // before start()
  // The child's pid; tandem::Error before start().
  long id() const;
  long pid() const { return id(); }
  // nullopt while running (or not started); the exit status once it has exited, or minus the
  // signal number that killed it.
  std::optional<int> exitcode() const;
  // Sends SIGTERM / SIGKILL (nothing if it has already exited).
  void terminate();
  void kill();
  // After join: a tandem::RemoteError for the exception that escaped the callable, or nullptr.
  std::exception_ptr exception() const;

 private:
  Process(AgentOptions options, std::unique_ptr<detail::AgentBody> body);
  bool join_until(detail::Clock::time_point deadline);
  detail::ProcessState& state() const;

  std::shared_ptr<detail::ProcessState> state_;
};

}  // namespace tandem
