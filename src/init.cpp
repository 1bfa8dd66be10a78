#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "fork_server.hpp"
#include "tandem/start_method.hpp"
#include "worker.hpp"

namespace tandem {
namespace {

std::atomic<bool> init_ran{false};

}  // namespace

void init(int, char**) {
  // A process that tandem spawned as a worker finds its mappings' descriptors here.
  if (const char* spec = std::getenv("TANDEM_WORKER")) {
    int worker_fd = -1, pool_fd = -1, wake_fd = -1;
    if (std::sscanf(spec, "%d,%d,%d", &worker_fd, &pool_fd, &wake_fd) != 3) {
      std::fprintf(stderr, "tandem::init: malformed TANDEM_WORKER=%s\n", spec);
      ::_exit(4);
    }
    ::unsetenv("TANDEM_WORKER");
    detail::worker_main_from_fds(worker_fd, pool_fd, wake_fd);
  }
  detail::ensure_fork_server();
  init_ran.store(true, std::memory_order_release);
}

bool initialized() noexcept { return init_ran.load(std::memory_order_acquire); }

}  // namespace tandem
