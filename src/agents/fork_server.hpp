// The fork server behind StartMethod::forkserver.
//
// A root server is forked once per program while it has a single thread (by tandem::init, or by
// the first pool that needs it). For each pool it forks a pool server, a single-threaded process
// that forks that pool's workers on request and reports how each one ended (a worker is the pool
// server's child, so only the pool server can learn its exit status). The pool server exits
// when its pool closes the connection, killing any worker left. Every process of the chain dies
// with its parent (PR_SET_PDEATHSIG), so none outlives the program.
//
// Killed servers are replaced on demand: a root server found gone is started again (afresh, by
// spawn, if the program runs threads by then), and a pool whose pool server is gone asks for a new
// one; the workers the old one had died with it and are reported lost.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <vector>

#include "tandem/detail/unique_fd.hpp"

namespace tandem::detail {

// Starts the root server if this process has none, or has one that is gone (killed): forked
// while the process has one thread, started afresh (spawn) once threads run, which needs
// tandem::init; Error when neither is possible.
void ensure_fork_server();

// The role of a root server started afresh (see handover.hpp): serves `control` until the
// program is gone.
[[noreturn]] void run_fork_server_from_fd(int control);

// A connection to a pool server of its own: a pool's, or a Process's (whose single child is
// then forked by it and reported like a worker).
class PoolServer {
 public:
  struct Exit {
    pid_t pid;
    int status;  // as waitpid reports it
  };

  // Asks the root server for a new pool server.
  PoolServer();

  // Forks a worker that maps `worker_fd` and `pool_fd`, wakes the pool through `wake_fd` and
  // exchanges large messages over `channel_fd`; returns its pid. Exit reports read meanwhile
  // are kept for take_exits().
  pid_t start_worker(int worker_fd, int pool_fd, int wake_fd, int channel_fd);
  // Forks a Process's child (see process_child.hpp); returns its pid.
  pid_t start_process(int request_fd, int error_fd);
  // Exit reports received so far (reads what is waiting on the connection, without blocking).
  std::vector<Exit> take_exits();
  // Waits until an exit report arrives or `deadline` passes.
  void wait_for_exit(std::chrono::steady_clock::time_point deadline);

  int fd() const noexcept { return connection_.get(); }
  // True once the server has closed the connection (it was killed): no report will come again,
  // and the processes it started were not seen to end.
  bool gone() const noexcept { return gone_; }

 private:
  pid_t start(std::uint32_t kind, std::initializer_list<int> fds);
  void receive(bool block);

  UniqueFd connection_;
  std::vector<Exit> exits_;
  std::optional<pid_t> started_;
  bool gone_ = false;
};

}  // namespace tandem::detail
