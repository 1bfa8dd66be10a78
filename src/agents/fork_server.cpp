#include "agents/fork_server.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include "tandem/error.hpp"
#include "tandem/start_method.hpp"
#include "os/descriptor_passing.hpp"
#include "os/close_descriptors.hpp"
#include "os/handover.hpp"
#include "tandem/detail/byte_queue.hpp"
#include "agents/process_child.hpp"
#include "pool/worker.hpp"

namespace tandem::detail {
namespace {

enum class Kind : std::uint32_t {
  new_pool_server = 1,
  pool_server_ready,
  start_worker,
  start_process,
  worker_started,
  start_failed,
  worker_exited
};

struct Message {
  Kind kind;
  std::int32_t pid = 0;
  std::int32_t status = 0;  // waitpid status, or errno for start_failed
};

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

bool send_message(int socket, const Message& message, std::initializer_list<int> fds = {}) {
  return send_with_descriptors(socket, &message, sizeof message, fds);
}

// False at the end of the connection; with `block` false, also when nothing is waiting.
bool receive_message(int socket, Message& message, std::vector<UniqueFd>& fds, bool block) {
  return receive_with_descriptors(socket, &message, sizeof message, fds, block) ==
         static_cast<long>(sizeof message);
}

// In a server process just started: die with the parent, leave Ctrl-C to the program.
// PR_SET_PDEATHSIG fires when the *thread* that started the process ends: right for a server
// forked by a thread that lives as long as its users (the program's main thread at init, the
// root server's only thread), wrong for a root server spawned afresh by whichever thread needed
// it. That one goes when its connection closes: only the program holds the other end.
enum class DeathSignal { with_parent, none };
void become_server(pid_t parent, DeathSignal death = DeathSignal::with_parent) {
  if (death == DeathSignal::with_parent) ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(0);
  ::signal(SIGINT, SIG_IGN);
  ::signal(SIGPIPE, SIG_IGN);
}

struct Child {
  pid_t pid;
  UniqueFd pidfd;
};

[[noreturn]] void pool_server_main(UniqueFd connection, pid_t root) {
  become_server(root);
  ::signal(SIGCHLD, SIG_DFL);  // the root ignores it (to reap pool servers); this one waits
  std::vector<Child> workers;
  std::vector<pollfd> fds;
  for (;;) {
    fds.assign(1, {connection.get(), POLLIN, 0});
    for (const auto& worker : workers) fds.push_back({worker.pidfd.get(), POLLIN, 0});
    if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) ::_exit(1);
    for (std::size_t i = workers.size(); i-- > 0;) {
      if (fds[i + 1].revents == 0) continue;
      int status = 0;
      while (::waitpid(workers[i].pid, &status, 0) < 0 && errno == EINTR) {
      }
      send_message(connection.get(), {Kind::worker_exited, workers[i].pid, status});
      workers.erase(workers.begin() + static_cast<std::ptrdiff_t>(i));
    }
    if (fds[0].revents == 0) continue;
    Message request{};
    std::vector<UniqueFd> received;
    if (!receive_message(connection.get(), request, received, true)) {
      // The pool is gone: so are its workers.
      for (const auto& worker : workers) ::kill(worker.pid, SIGKILL);
      for (const auto& worker : workers) ::waitpid(worker.pid, nullptr, 0);
      ::_exit(0);
    }
    const bool worker = request.kind == Kind::start_worker && received.size() == 4;
    const bool process = request.kind == Kind::start_process && received.size() == 2;
    if (!worker && !process) {
      send_message(connection.get(), {Kind::start_failed, 0, EINVAL});
      continue;
    }
    const pid_t pid = ::fork();
    if (pid == 0 && worker) {
      worker_main_from_fds(received[0].get(), received[1].get(), received[2].get(), received[3].get());
    }
    if (pid == 0) {
      // A Process's child behaves as a forked one would: Ctrl-C and broken pipes are its own.
      ::signal(SIGINT, SIG_DFL);
      ::signal(SIGPIPE, SIG_DFL);
      connection.reset();
      run_process_from_fds(received[0].get(), received[1].get());
    }
    if (pid < 0) {
      send_message(connection.get(), {Kind::start_failed, 0, errno});
      continue;
    }
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    send_message(connection.get(), {Kind::worker_started, pid, 0});
    workers.push_back({pid, std::move(pidfd)});
  }
}

[[noreturn]] void root_server_main(UniqueFd control, pid_t program, DeathSignal death) {
  become_server(program, death);
  ::signal(SIGCHLD, SIG_IGN);  // pool servers are reaped by the kernel
  for (;;) {
    Message request{};
    std::vector<UniqueFd> received;
    if (!receive_message(control.get(), request, received, true)) ::_exit(0);  // the program is gone
    int pair[2];
    if (request.kind != Kind::new_pool_server ||
        ::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
      send_message(control.get(), {Kind::start_failed, 0, request.kind != Kind::new_pool_server ? EINVAL : errno});
      continue;
    }
    UniqueFd pool_end(pair[0]), server_end(pair[1]);
    const pid_t root = ::getpid();
    const pid_t pid = ::fork();
    if (pid == 0) {
      control.reset();
      pool_end.reset();
      pool_server_main(std::move(server_end), root);
    }
    if (pid < 0) {
      send_message(control.get(), {Kind::start_failed, 0, errno});
      continue;
    }
    send_message(control.get(), {Kind::pool_server_ready, pid, 0}, {pool_end.get()});
  }
}

// The connection to this program's root server; guarded by `mutex`, since pools start from any
// thread. A server that is found gone (killed) is replaced on the next request.
struct Root {
  std::mutex mutex;
  UniqueFd control;
  pid_t server = 0;  // its pid: this process's child, reaped when it is replaced
  pid_t owner = 0;   // the process that started it: a fork of the program needs its own
};

// This process's Root. A process forked from one that had a server (the server itself, its
// pool servers and workers, a fork-method worker) finds a copy whose mutex may have been locked
// at the fork and whose connection belongs to the original: it starts over with a fresh one.
Root& root() {
  static Root instance;
  if (instance.owner != 0 && instance.owner != ::getpid()) {
    instance.control.release();  // the original's descriptor: not this process's to close
    std::destroy_at(&instance);
    std::construct_at(&instance);
  }
  return instance;
}

std::size_t thread_count() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& task : std::filesystem::directory_iterator("/proc/self/task")) ++n;
  return n;
}

// With `state.mutex` held. Forked while the program has one thread (at init, or at the first
// pool of a program without init); once threads run, a replacement is started afresh instead
// (StartMethod::spawn's hand-over), which is safe whatever the threads hold.
void start_root(Root& state) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) throw Error(errno_text("fork server: socketpair"));
  UniqueFd program_end(pair[0]), server_end(pair[1]);
  const pid_t parent = ::getpid();
  if (thread_count() > 1) {
    if (!initialized()) {
      throw Error(
          "the forkserver start method needs its server started while the program has one thread: "
          "call tandem::init(argc, argv) at the top of main, or choose StartMethod::spawn (also needs init) or "
          "StartMethod::fork");
    }
    state.server = spawn_program(Role::fork_server, {server_end.get()}, "fork server");
    state.owner = parent;
    state.control = std::move(program_end);
    return;
  }
  std::fflush(nullptr);
  state.owner = parent;  // before the fork, so that the server's copy knows it is a copy
  const pid_t pid = ::fork();
  if (pid < 0) {
    state.owner = 0;
    throw Error(errno_text("fork server: fork"));
  }
  if (pid == 0) {
    program_end.reset();
    release_pipe_holds_inherited_by_fork();  // the server would keep the program's pipes open
    root_server_main(std::move(server_end), parent, DeathSignal::with_parent);
  }
  state.server = pid;
  state.control = std::move(program_end);
}

// With `state.mutex` held: whether the root server is there. It never speaks unasked, so a
// connection with anything to read has been closed by its end: the server is gone.
bool root_alive(const Root& state) {
  if (!state.control) return false;
  pollfd connection{state.control.get(), POLLIN, 0};
  return ::poll(&connection, 1, 0) == 0;
}

// With `state.mutex` held: forgets a root server that is gone (or stuck), and reaps it.
void forget_root(Root& state) {
  state.control.reset();
  if (state.server > 0) {
    ::kill(state.server, SIGKILL);  // a stuck one too; a gone one is no worse for it
    while (::waitpid(state.server, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  state.server = 0;
}

// Waits until `fd` is readable or `timeout` passes; false then.
bool readable_within(int fd, std::chrono::milliseconds timeout) {
  pollfd readable{fd, POLLIN, 0};
  int result;
  while ((result = ::poll(&readable, 1, static_cast<int>(timeout.count()))) < 0 && errno == EINTR) {
  }
  return result > 0;
}

// How long a server may take to answer: it only forks, so anything near this means it is stuck
// (stopped by a signal, say), and the caller gets an error rather than a hang.
constexpr std::chrono::seconds kServerAnswer{10};

}  // namespace

void ensure_fork_server() {
  Root& state = root();
  std::lock_guard lock(state.mutex);
  if (root_alive(state)) return;
  forget_root(state);
  start_root(state);
}

PoolServer::PoolServer() {
  Root& state = root();
  std::lock_guard lock(state.mutex);
  // A root server killed since the last request is replaced: one retry, with a fresh one.
  for (int attempt = 0;; ++attempt) {
    if (!root_alive(state)) {
      forget_root(state);
      start_root(state);
    }
    Message reply{};
    std::vector<UniqueFd> received;
    if (send_message(state.control.get(), {Kind::new_pool_server}) &&
        readable_within(state.control.get(), kServerAnswer) &&
        receive_message(state.control.get(), reply, received, false)) {
      if (reply.kind != Kind::pool_server_ready || received.size() != 1) {
        errno = reply.status;
        throw Error(errno_text("fork server: could not start a pool server"));
      }
      connection_ = std::move(received[0]);
      return;
    }
    forget_root(state);
    if (attempt == 1) throw Error("fork server: it does not answer, and neither did a fresh one");
  }
}

pid_t PoolServer::start_worker(int worker_fd, int pool_fd, int wake_fd, int channel_fd) {
  return start(static_cast<std::uint32_t>(Kind::start_worker), {worker_fd, pool_fd, wake_fd, channel_fd});
}

pid_t PoolServer::start_process(int request_fd, int error_fd) {
  return start(static_cast<std::uint32_t>(Kind::start_process), {request_fd, error_fd});
}

pid_t PoolServer::start(std::uint32_t kind, std::initializer_list<int> fds) {
  if (!send_message(connection_.get(), {static_cast<Kind>(kind)}, fds)) {
    gone_ = true;
    throw Error(errno_text("fork server: cannot reach it"));
  }
  started_.reset();
  const auto deadline = std::chrono::steady_clock::now() + kServerAnswer;
  while (!started_) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !readable_within(connection_.get(), left)) {
      throw Error("fork server: no answer in " + std::to_string(kServerAnswer.count()) + " s (is it stopped?)");
    }
    receive(true);
  }
  return *started_;
}

std::vector<PoolServer::Exit> PoolServer::take_exits() {
  receive(false);
  return std::exchange(exits_, {});
}

void PoolServer::wait_for_exit(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  if (gone_) return;
  pollfd readable{connection_.get(), POLLIN, 0};
  const int forever = -1;
  if (left.count() > 0) ::poll(&readable, 1, left.count() > 1'000'000'000 ? forever : static_cast<int>(left.count()));
  receive(false);
}

void PoolServer::receive(bool block) {
  for (;;) {
    Message message{};
    std::vector<UniqueFd> unused;
    const long received = receive_with_descriptors(connection_.get(), &message, sizeof message, unused, block);
    if (received == kConnectionClosed) {
      gone_ = true;
      if (block) throw Error("fork server: it is gone (was it killed?)");
      return;
    }
    if (received != static_cast<long>(sizeof message)) return;
    switch (message.kind) {
      case Kind::worker_exited:
        exits_.push_back({message.pid, message.status});
        break;
      case Kind::worker_started:
        started_ = message.pid;
        return;
      case Kind::start_failed:
        errno = message.status;
        throw Error(errno_text("fork server: could not fork"));
      default:
        throw Error("fork server: unexpected message");
    }
    block = false;  // after one message, take only what is already there
  }
}

void run_fork_server_from_fd(int control) {
  const pid_t program = ::getppid();
  close_descriptors_except({control});
  root_server_main(UniqueFd(control), program, DeathSignal::none);
}

}  // namespace tandem::detail
