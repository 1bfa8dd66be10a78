#include "tandem/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "os/close_descriptors.hpp"
#include "diagnostics/diagnostics_session.hpp"
#include "agents/fork_server.hpp"
#include "agents/process_child.hpp"
#include "agents/process_family.hpp"
#include "ipc/shared_mapping.hpp"
#include "os/handover.hpp"
#include "tandem/detail/unique_fd.hpp"
#include "tandem/error.hpp"

namespace tandem {
namespace detail {

struct ProcessState {
  ProcessOptions options;
  ProcessBody body;
  pid_t pid = -1;
  std::optional<PoolServer> server;  // forkserver: the child's parent, which reports its exit
  UniqueFd pidfd;        // fork, spawn: readable once the child has exited (Linux >= 5.3), else empty
  UniqueFd error_pipe;   // read end: the child's escaped exception, if any
  std::optional<int> exitcode;
  std::exception_ptr error;
  bool in_child = false;  // set in the child's copy of this state
};

}  // namespace detail

namespace {

constexpr std::size_t kMaxErrorText = 4096;  // well under a pipe's buffer: the child never blocks

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

void write_all(int fd, const std::string& text) {
  std::size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    written += static_cast<std::size_t>(n);
  }
}

// In a child, inside a catch block: reports the exception as "type\0message" to the parent, and
// on the child's own stderr, as Python prints an uncaught exception's traceback there.
void write_report(int error_fd) {
  const auto [type, message] = detail::describe_current_exception();
  const std::string short_type = detail::shortened(type, 512), short_message = detail::shortened(message, kMaxErrorText);
  write_all(error_fd, short_type + '\0' + short_message);
  write_all(STDERR_FILENO, "tandem::Process " + std::to_string(::getpid()) + ": uncaught " + short_type + ": " +
                               short_message + "\n");
}

// In a forked child: runs the body and reports an escaped exception.
[[noreturn]] void run_child(detail::ProcessState& state, int error_fd) {
  int code = 0;
  try {
    state.body.in_fork->run();
  } catch (...) {
    write_report(error_fd);
    code = 1;
  }
  std::fflush(nullptr);  // what the child printed must not die in a stdio buffer
  ::_exit(code);
}

// The exception report as write_report() wrote it, or nullptr for none.
std::exception_ptr read_child_error(int fd) {
  std::string text;
  char buffer[1024];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
  }
  if (text.empty()) return nullptr;
  const auto separator = text.find('\0');
  if (separator == std::string::npos) return std::make_exception_ptr(RemoteError(text, ""));
  return remote_exception(text.substr(0, separator), text.substr(separator + 1));
}

void record_exit(detail::ProcessState& state, int status) {
  state.exitcode = WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status);
  detail::remove_child(state.pid);
  if (state.error_pipe) {
    state.error = read_child_error(state.error_pipe.get());
    state.error_pipe.reset();
  }
  state.pidfd.reset();
}

// Reaps the child if it has exited; `block` waits for it. True once reaped.
bool try_reap(detail::ProcessState& state, bool block) {
  if (state.exitcode) return true;
  if (state.server) {
    for (;;) {
      for (const auto& exit : state.server->take_exits()) {
        if (exit.pid == state.pid) {
          record_exit(state, exit.status);
          state.server.reset();
          return true;
        }
      }
      if (state.server->gone()) {
        throw Error("Process: the fork server that started process " + std::to_string(state.pid) +
                    " is gone (was it killed?); its exit status cannot be known");
      }
      if (!block) return false;
      state.server->wait_for_exit(detail::Clock::time_point::max());
    }
  }
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(state.pid, &status, block ? 0 : WNOHANG);
    if (r == state.pid) {
      record_exit(state, status);
      return true;
    }
    if (r == 0) return false;
    if (errno == EINTR) continue;
    throw Error(errno_text("Process: waitpid"));
  }
}

void check_not_started(const detail::ProcessState& state, const char* what) {
  if (state.pid != -1) throw Error(std::string("Process::") + what + ": the process has already been started");
}

void check_started(const detail::ProcessState& state, const char* what) {
  if (state.in_child) throw Error(std::string("Process::") + what + ": called from inside the process itself");
  if (state.pid == -1) throw Error(std::string("Process::") + what + ": the process has not been started");
}

}  // namespace

Process::Process(ProcessOptions options, detail::ProcessBody body)
    : state_(std::make_shared<detail::ProcessState>()) {
  if (options.agent.name.empty()) options.agent.name = detail::default_agent_name("Process");
  state_->options = std::move(options);
  state_->body = std::move(body);
}

Process::Process(Process&&) noexcept = default;

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    Process doomed(std::move(*this));  // reaps what this held, as its destructor would
    state_ = std::move(other.state_);
  }
  return *this;
}

Process::~Process() {
  if (!state_ || state_->pid == -1 || state_->in_child || state_->exitcode) return;
  try {
    if (state_->options.agent.daemon) {
      ::kill(state_->pid, SIGTERM);
      if (!join_for(std::chrono::seconds(1))) {
        ::kill(state_->pid, SIGKILL);
        try_reap(*state_, true);
      }
    } else {
      try_reap(*state_, true);
    }
  } catch (const Error&) {
    // waitpid failed (someone else reaped the child): nothing is left to clean up.
  }
}

detail::ProcessState& Process::state() const {
  if (!state_) throw Error("Process: this object was moved from");
  return *state_;
}

void Process::start() {
  auto& state = this->state();
  if (state.in_child) throw Error("Process::start: called from inside the process itself");
  check_not_started(state, "start");
  int fds[2];
  // Non-blocking: the child writes its report before it exits, so after the exit the parent
  // reads what is there and stops, even if a grandchild still holds the write end.
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) throw Error(errno_text("Process::start: pipe2"));
  detail::UniqueFd read_end(fds[0]), write_end(fds[1]);
  // A forked child would inherit unflushed output and print it a second time; any child's output
  // should follow what this process printed before starting it.
  std::fflush(nullptr);
  if (state.options.start_method == StartMethod::fork) {
    const ProcessInfo parent = current_process();
    const pid_t pid = ::fork();
    if (pid < 0) throw Error(errno_text("Process::start: fork"));
    if (pid == 0) {
      state.in_child = true;
      read_end.reset();
      detail::become_child(state.options.agent.name, parent);
      run_child(state, write_end.get());
    }
    state.pid = pid;
    // The child has its copy of the callable and arguments; this one would only keep alive what
    // they hold (a pipe end the caller closes expects to be let go of, as in Python).
    state.body.in_fork.reset();
  } else {
    // The child joins this program's diagnostics first, then runs the body.
    detail::ByteWriter context;
    detail::encode_diagnostics_context(context);
    detail::encode_family(context, state.options.agent.name);
    detail::SharedMapping request(context.size() + state.body.request.size());
    std::memcpy(request.data(), context.data(), context.size());
    std::memcpy(request.data() + context.size(), state.body.request.data(), state.body.request.size());
    if (state.options.start_method == StartMethod::forkserver) {
      state.server.emplace();
      state.pid = state.server->start_process(request.fd(), write_end.get());
    } else {
      state.pid = detail::spawn_program(detail::Role::process, {request.fd(), write_end.get()}, "Process::start");
    }
  }
  detail::add_child(detail::ProcessIdentity::of(state.pid), state.options.agent.name);
  state.body = {};  // it runs in the child; the parent's copy is done with
  state.error_pipe = std::move(read_end);
  if (state.server) return;  // not this process's child: its server reports the exit
  if (const long fd = ::syscall(SYS_pidfd_open, state.pid, 0); fd >= 0) {
    state.pidfd.reset(static_cast<int>(fd));
    ::fcntl(state.pidfd.get(), F_SETFD, FD_CLOEXEC);
  }
}

void Process::join() {
  auto& state = this->state();
  check_started(state, "join");
  try_reap(state, true);
}

bool Process::join_by(detail::Clock::time_point deadline) {
  auto& state = this->state();
  check_started(state, "join_for");
  if (deadline == detail::Clock::time_point::max()) return try_reap(state, true);
  for (;;) {
    if (try_reap(state, false)) return true;
    const auto now = detail::Clock::now();
    if (now >= deadline) return false;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now);
    if (state.server) {
      state.server->wait_for_exit(deadline);
    } else if (state.pidfd) {
      pollfd waiting{state.pidfd.get(), POLLIN, 0};
      ::poll(&waiting, 1, static_cast<int>(std::min<long long>(left.count(), 1'000'000)));
    } else {
      std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(left, std::chrono::milliseconds(1)));
    }
  }
}

bool Process::is_alive() const {
  auto& state = this->state();
  if (state.pid == -1 || state.in_child) return state.in_child;
  return !try_reap(state, false);
}

const std::string& Process::name() const { return state().options.agent.name; }

void Process::set_name(std::string name) {
  auto& state = this->state();
  check_not_started(state, "set_name");
  state.options.agent.name = std::move(name);
}

bool Process::daemon() const { return state().options.agent.daemon; }

StartMethod Process::start_method() const { return state().options.start_method; }

void Process::set_daemon(bool daemon) {
  auto& state = this->state();
  check_not_started(state, "set_daemon");
  state.options.agent.daemon = daemon;
}

long Process::id() const {
  const auto& state = this->state();
  if (state.in_child) return ::getpid();
  if (state.pid == -1) throw Error("Process::id: the process has not been started");
  return state.pid;
}

std::optional<int> Process::exitcode() const {
  auto& state = this->state();
  if (state.pid == -1 || state.in_child) return std::nullopt;
  try_reap(state, false);
  return state.exitcode;
}

void Process::terminate() {
  auto& state = this->state();
  check_started(state, "terminate");
  if (!try_reap(state, false)) ::kill(state.pid, SIGTERM);
}

void Process::kill() {
  auto& state = this->state();
  check_started(state, "kill");
  if (!try_reap(state, false)) ::kill(state.pid, SIGKILL);
}

std::exception_ptr Process::exception() const {
  auto& state = this->state();
  check_started(state, "exception");
  if (!state.exitcode) throw Error("Process::exception: the process is still running; join it first");
  return state.error;
}

namespace detail {

void run_process_from_fds(int request_fd, int error_fd) {
  // Nothing of the server's or the spawning program's descriptors but these and stdio.
  close_descriptors_except({request_fd, error_fd});
  int code = 0;
  try {
    std::vector<std::byte> request;
    {
      // Copied out so that the callable runs with nothing of tandem's open but the error pipe.
      const SharedMapping mapping = SharedMapping::attach(UniqueFd(request_fd));
      request.assign(mapping.data(), mapping.data() + mapping.size());
    }
    ByteReader in(request);
    adopt_diagnostics_context(in);
    adopt_family(in);
    const Entry entry = read_entry(in);
    ByteWriter unused;
    entry(in, unused);
  } catch (...) {
    write_report(error_fd);
    code = 1;
  }
  std::fflush(nullptr);
  ::_exit(code);
}

}  // namespace detail
}  // namespace tandem
