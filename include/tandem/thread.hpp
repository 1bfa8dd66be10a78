// Thread: a thread of this process as a processing agent, with the members of Python's
// threading.Thread and the same interface as tandem::Process.
//
//   tandem::Thread t([](int n) { work(n); }, 42);  t.start();  t.join();
//
// An exception that escapes the callable is kept and returned by exception() after join.
// Destruction: a started, non-daemon thread is joined (like std::jthread); a daemon thread is
// detached and keeps its own state alive.
#pragma once

#include <chrono>
#include <exception>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "tandem/agent.hpp"
#include "tandem/detail/deadline.hpp"
#include "tandem/detail/wait.hpp"

namespace tandem {

namespace detail {
struct ThreadState;
}

class Thread {
 public:
  template <class F, class... Args>
    requires(!std::is_same_v<std::decay_t<F>, AgentOptions>)
  explicit Thread(F&& f, Args&&... args)
      : Thread(AgentOptions{}, std::forward<F>(f), std::forward<Args>(args)...) {}
  template <class F, class... Args>
  Thread(AgentOptions options, F&& f, Args&&... args)
      : Thread(std::move(options), detail::make_agent_body(std::forward<F>(f), std::forward<Args>(args)...)) {}

  Thread(Thread&&) noexcept;
  Thread& operator=(Thread&&) noexcept;
  ~Thread();

  // Starts the thread; tandem::Error if started before.
  void start();
  // Waits for the thread to finish. tandem::Error before start() or from the thread itself.
  void join();
  // join() with a timeout: false if the thread is still running after `timeout` (at `deadline`).
  template <class Rep, class Period>
  bool join_for(std::chrono::duration<Rep, Period> timeout) {
    return join_by(detail::deadline_after(timeout));
  }
  template <class Clock, class Duration>
  bool join_until(std::chrono::time_point<Clock, Duration> deadline) {
    return join_by(detail::deadline_at(deadline));
  }
  bool is_alive() const;

  const std::string& name() const;
  void set_name(std::string name);  // before start()
  bool daemon() const;
  void set_daemon(bool daemon);  // before start()
  // The OS thread id (gettid), as Python's native_id; tandem::Error before start().
  long id() const;
  // After join: the exception that escaped the callable, or nullptr.
  std::exception_ptr exception() const;

 private:
  Thread(AgentOptions options, std::unique_ptr<detail::AgentBody> body);
  void start_thread(detail::ThreadState& state);
  bool join_by(detail::Clock::time_point deadline);
  detail::ThreadState& state() const;

  std::shared_ptr<detail::ThreadState> state_;
};

}  // namespace tandem
