// Process: a child process as a processing agent, with the members of Python's
// multiprocessing.Process and the same interface as tandem::Thread.
//
//   tandem::Process p([](int n) { risky(n); }, 42);  p.start();  p.join();  p.exitcode();  // 0
//
// The child runs the callable and exits with code 0; if the callable throws, its exception
// travels back (exception() returns it as its own type when registered, see error.hpp, else as
// a tandem::RemoteError with its type name and message) and the exit code is 1. Killed by a
// signal, exitcode() is minus the signal number, as in Python. The child never runs this
// process's atexit handlers or static destructors.
//
// The callable and its arguments travel to the child as to a ProcessPool's worker, whatever the
// start method: a function pointer or a captureless lambda (values as arguments or bound by
// tandem::partial), and arguments that are trivially copyable without addresses, vectors or
// strings of such, or cereal-serializable. Anything else does not compile, with a message that
// says what to do: a capture would read memory the child may not have.
//
// How the child starts (ProcessOptions::start_method, see start_method.hpp): forkserver (the
// default, as for the pools), spawn, or fork.
//
//   tandem::Process p(tandem::ProcessOptions{.start_method = tandem::StartMethod::spawn}, work, 7);
//
// Destruction: a started, non-daemon child is waited for; a daemon child is sent SIGTERM, then
// SIGKILL after a second, and reaped. Either way no zombie remains.
#pragma once

#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "tandem/agent.hpp"
#include "tandem/detail/codec.hpp"
#include "tandem/detail/deadline.hpp"
#include "tandem/detail/remote_task.hpp"
#include "tandem/detail/wait.hpp"
#include "tandem/start_method.hpp"

namespace tandem {

// A Thread's options (name, daemon) and how the child starts:
//   tandem::ProcessOptions{.agent = {.name = "encoder", .daemon = true}, .start_method = tandem::StartMethod::spawn}
struct ProcessOptions {
  AgentOptions agent = {};
  StartMethod start_method = default_start_method();
};

namespace detail {
struct ProcessState;

// What a Process runs: the callable itself for a forked child, or its bytes for a child that
// starts from a fork server or afresh: [entry offset][callable][arguments].
struct ProcessBody {
  std::unique_ptr<AgentBody> in_fork;
  std::vector<std::byte> request;
};

// Child side of a Process started by forkserver or spawn; the callable's result is dropped, as
// a forked child's is.
template <class F, class... Args>
void process_entry(ByteReader& in, ByteWriter&) {
  F f = decode_callable<F>(in);
  std::tuple<Args...> args{decode<Args>(in)...};  // braces: decoded left to right
  std::apply([&f](Args&... a) { std::invoke(f, std::move(a)...); }, args);
}

template <class F, class... Args>
ProcessBody make_process_body(StartMethod method, F&& f, Args&&... args) {
  using Fn = std::decay_t<F>;
  static_assert(kCallableCanTravel<Fn>,
                "tandem::Process: this callable cannot be sent to another process. C++ cannot see what a lambda "
                "captured, and a captured reference, pointer or this would read memory the child may not have, so "
                "only state the compiler can check travels: use a function pointer or a captureless lambda, and "
                "pass the data as arguments, tandem::Process(f, args...), or bind it with tandem::partial(f, "
                "values...).");
  static_assert((kCanTravel<std::decay_t<Args>> && ...),
                "tandem::Process: an argument type cannot travel between processes. Use a trivially copyable "
                "type that holds no pointer, reference or view, a std::vector or std::string of such, a tandem "
                "handle (Queue, Lock, SharedMemory...), or give the type a cereal serialize() function and a default constructor.");
  static_assert(std::is_invocable_v<Fn&, std::decay_t<Args>...>,
                "tandem::Process: the callable cannot be invoked with these arguments");
  if (method == StartMethod::fork) return {make_agent_body(std::forward<F>(f), std::forward<Args>(args)...), {}};
  ByteWriter out;
  out.write_raw(code_offset(reinterpret_cast<const void*>(&process_entry<Fn, std::decay_t<Args>...>)));
  encode_callable(out, Fn(std::forward<F>(f)));
  (encode<std::decay_t<Args>>(out, args), ...);
  return {nullptr, std::vector<std::byte>(out.data(), out.data() + out.size())};
}

}  // namespace detail

class Process {
 public:
  template <class F, class... Args>
    requires(!std::is_same_v<std::decay_t<F>, AgentOptions> && !std::is_same_v<std::decay_t<F>, ProcessOptions>)
  explicit Process(F&& f, Args&&... args)
      : Process(ProcessOptions{}, std::forward<F>(f), std::forward<Args>(args)...) {}
  template <class F, class... Args>
  Process(AgentOptions options, F&& f, Args&&... args)
      : Process(ProcessOptions{.agent = std::move(options)}, std::forward<F>(f),
                std::forward<Args>(args)...) {}
  template <class F, class... Args>
  Process(ProcessOptions options, F&& f, Args&&... args)
      : Process(std::move(options), detail::make_process_body(options.start_method, std::forward<F>(f),
                                                   std::forward<Args>(args)...)) {}

  Process(Process&&) noexcept;
  Process& operator=(Process&&) noexcept;
  ~Process();

  // Starts the child; tandem::Error if started before or if it cannot be started.
  void start();
  // Waits for the child to exit and reaps it. tandem::Error before start() or from the child.
  void join();
  // join() with a timeout: false if the child is still running after `timeout` (at `deadline`).
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
  // The child's pid; tandem::Error before start().
  long id() const;
  long pid() const { return id(); }
  // nullopt while running (or not started); the exit status once it has exited, or minus the
  // signal number that killed it.
  std::optional<int> exitcode() const;
  // Sends SIGTERM / SIGKILL (nothing if it has already exited).
  void terminate();
  void kill();
  StartMethod start_method() const;
  // After join: the exception that escaped the callable (its own type if registered, else a
  // tandem::RemoteError), or nullptr.
  std::exception_ptr exception() const;

 private:
  Process(ProcessOptions options, detail::ProcessBody body);
  bool join_by(detail::Clock::time_point deadline);
  detail::ProcessState& state() const;

  std::shared_ptr<detail::ProcessState> state_;
};

// Who a process is, as current_process(), parent_process() and active_children() tell it
// (Python's multiprocessing.current_process().name and .pid).
struct ProcessInfo {
  long pid = 0;
  std::string name;
};

// This process: "MainProcess" in a program tandem did not start; in a Process's child, the name
// given to that Process; in a ProcessPool worker, "ProcessPoolWorker-<n>" (n counts the pool's
// workers from 1, replacements included).
ProcessInfo current_process();
// The process that started this one with tandem (a Process's creator, a pool worker's pool),
// whatever the start method (under forkserver the OS parent is the fork server; this is the
// process that asked for the child). nullopt in a program tandem did not start.
std::optional<ProcessInfo> parent_process();
// The Process children this process started that have not exited (pool workers are counted by
// pool.stats()). Unlike Python's, it reaps nothing: join() remains the owner's.
std::vector<ProcessInfo> active_children();

}  // namespace tandem
