// The janitor is a grandchild of the process it serves (so never that process's child to reap)
// in a session of its own (so Ctrl-C or a signal to the process group does not reach it). It
// reads fixed-size records from a socket and, at end of file, removes the names still tracked.
// End of file comes exactly when the served process is gone: only it holds the other end, which
// its forked children close (see close_in_forked_child).
//
// The janitor is forked from a process that may run threads, so until it exits it uses only
// system calls and memory of its own (async-signal-safe code).
#include "ipc/segment_janitor.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <new>
#include <set>
#include <string>

#include "os/close_descriptors.hpp"
#include "tandem/error.hpp"

namespace tandem::detail {
namespace {

struct Record {
  char operation;  // kTrack or kForget
  char name[255];  // NUL-terminated
};
constexpr char kTrack = 'T';
constexpr char kForget = 'F';

struct JanitorConnection {
  std::mutex mutex;
  int write_end = -1;
  pid_t pid = 0;                  // the janitor's, as it reported it
  std::set<std::string> tracked;  // what it was told to remove: told again to a replacement
};

JanitorConnection& connection() {
  static JanitorConnection instance;
  return instance;
}

// A forked child must not keep its parent's janitor waiting: it gets its own if it needs one.
// Its copy of the mutex may have been held by a thread that does not exist in the child.
void close_in_forked_child() {
  auto& janitor = connection();
  if (janitor.write_end >= 0) ::close(janitor.write_end);
  janitor.write_end = -1;
  janitor.pid = 0;
  new (&janitor.mutex) std::mutex;
  // The names are the parent's to have removed; the child tracks only what it creates. (Its copy
  // of the set is not touched: its allocator lock may be held by a thread gone in the child.)
  ::new (&janitor.tracked) std::set<std::string>();
}
// Registered at start-up, not at first use: a first use that raced a fork in another thread would
// leave the child a half-done static initialization, and the child would hang in it.
const bool closes_in_forked_children = ::pthread_atfork(nullptr, nullptr, close_in_forked_child) == 0;

bool read_record(int fd, Record& record) {
  auto* at = reinterpret_cast<char*>(&record);
  std::size_t got = 0;
  while (got < sizeof record) {
    const ssize_t n = ::read(fd, at + got, sizeof record - got);
    if (n > 0) {
      got += static_cast<std::size_t>(n);
    } else if (n == 0 || errno != EINTR) {
      return false;
    }
  }
  return true;
}

[[noreturn]] void run_janitor(int read_end) {
  ::setsid();
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  for (const int signal : {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGQUIT}) ::sigaction(signal, &ignore, nullptr);
  close_descriptors_except({read_end});

  std::size_t capacity = 1024;
  void* table = ::mmap(nullptr, capacity * sizeof(Record), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (table == MAP_FAILED) ::_exit(1);
  auto* names = static_cast<Record*>(table);
  const pid_t self = ::getpid();  // told to the served process, which may need to know it is gone
  if (::send(read_end, &self, sizeof self, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof self)) ::_exit(1);
  Record record;
  while (read_record(read_end, record)) {
    record.name[sizeof record.name - 1] = '\0';
    if (record.operation == kForget) {
      for (std::size_t i = 0; i < capacity; ++i) {
        if (names[i].operation == kTrack && std::strcmp(names[i].name, record.name) == 0) {
          names[i].operation = 0;
          break;
        }
      }
      continue;
    }
    std::size_t slot = 0;
    while (slot < capacity && names[slot].operation == kTrack) ++slot;
    if (slot == capacity) {
      void* grown = ::mremap(names, capacity * sizeof(Record), 2 * capacity * sizeof(Record), MREMAP_MAYMOVE);
      if (grown == MAP_FAILED) continue;
      names = static_cast<Record*>(grown);
      capacity *= 2;
    }
    names[slot] = record;
  }
  for (std::size_t i = 0; i < capacity; ++i) {
    if (names[i].operation == kTrack) ::shm_unlink(names[i].name);
  }
  ::_exit(0);
}

// With the connection's mutex held. The write end is the connection's before any fork, so that
// a child forked meanwhile by another thread closes it too (close_in_forked_child). A socket
// rather than a pipe: a write to a janitor that is gone fails with EPIPE instead of raising
// SIGPIPE in the user's program.
void start_janitor(JanitorConnection& janitor) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    throw Error(std::string("shared memory janitor: socketpair: ") + std::strerror(errno));
  }
  janitor.write_end = fds[1];
  const pid_t middle = ::fork();
  if (middle < 0) {
    const int error = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    janitor.write_end = -1;
    throw Error(std::string("shared memory janitor: fork: ") + std::strerror(error));
  }
  if (middle == 0) {
    const pid_t janitor_pid = ::fork();
    if (janitor_pid == 0) run_janitor(fds[0]);
    ::_exit(janitor_pid < 0 ? 1 : 0);
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(middle, &status, 0) < 0 && errno == EINTR) {
  }
  pollfd reported{fds[1], POLLIN, 0};
  pid_t pid = 0;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || ::poll(&reported, 1, 5000) != 1 ||
      ::recv(fds[1], &pid, sizeof pid, MSG_DONTWAIT) != static_cast<ssize_t>(sizeof pid)) {
    ::close(fds[1]);
    janitor.write_end = -1;
    throw Error("shared memory janitor: it could not be started");
  }
  janitor.pid = pid;
}

bool send_record(int fd, const Record& record) {
  const auto* at = reinterpret_cast<const char*>(&record);
  for (std::size_t sent = 0; sent < sizeof record;) {
    const ssize_t n = ::send(fd, at + sent, sizeof record - sent, MSG_NOSIGNAL);
    if (n >= 0) {
      sent += static_cast<std::size_t>(n);
    } else if (errno != EINTR) {
      return false;
    }
  }
  return true;
}

Record make_record(char operation, const std::string& name) {
  Record record{};
  record.operation = operation;
  std::strncpy(record.name, name.c_str(), sizeof record.name - 1);
  return record;
}

// A janitor that is gone (killed) is replaced, and told again every name this process still
// tracks: what the old one knew is lost with it, and the names must not be.
void send(char operation, const std::string& name) {
  auto& janitor = connection();
  std::lock_guard lock(janitor.mutex);
  if (operation == kForget) {
    janitor.tracked.erase(name);
    if (janitor.write_end >= 0) send_record(janitor.write_end, make_record(kForget, name));
    return;
  }
  janitor.tracked.insert(name);
  if (janitor.write_end >= 0 && send_record(janitor.write_end, make_record(kTrack, name))) return;
  if (!closes_in_forked_children) throw Error("shared memory janitor: pthread_atfork failed");
  if (janitor.write_end >= 0) {
    ::close(janitor.write_end);
    janitor.write_end = -1;
  }
  start_janitor(janitor);
  for (const std::string& tracked : janitor.tracked) {
    if (!send_record(janitor.write_end, make_record(kTrack, tracked))) {
      throw Error(std::string("shared memory janitor: send: ") + std::strerror(errno));
    }
  }
}

}  // namespace

void janitor_track(const std::string& name) { send(kTrack, name); }
void janitor_forget(const std::string& name) { send(kForget, name); }
pid_t janitor_pid() {
  auto& janitor = connection();
  std::lock_guard lock(janitor.mutex);
  return janitor.write_end >= 0 ? janitor.pid : 0;
}

}  // namespace tandem::detail
