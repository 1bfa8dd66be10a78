#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fork_server.hpp"
#include "process_child.hpp"
#include "spawn_program.hpp"
#include "tandem/diagnostics.hpp"
#include "tandem/error.hpp"
#include "tandem/start_method.hpp"
#include "worker.hpp"

namespace tandem {
namespace {

std::atomic<bool> init_ran{false};

// The descriptor numbers that spawn_program put in `variable`, or nothing if it is not set; a
// malformed value ends the process (it was started for tandem, not as the program).
template <int N>
bool spawned_as(const char* variable, int (&fds)[N]) {
  const char* spec = std::getenv(variable);
  if (!spec) return false;
  int parsed = 0;
  if constexpr (N == 2) parsed = std::sscanf(spec, "%d,%d", &fds[0], &fds[1]);
  if constexpr (N == 4) parsed = std::sscanf(spec, "%d,%d,%d,%d", &fds[0], &fds[1], &fds[2], &fds[3]);
  if (parsed != N) {
    std::fprintf(stderr, "tandem::init: malformed %s=%s\n", variable, spec);
    ::_exit(4);
  }
  ::unsetenv(variable);
  return true;
}

// TANDEM_DEADLOCK=report|abort turns the pitfall diagnostics on for the whole program.
void enable_diagnostics_from_environment() {
  const char* setting = std::getenv("TANDEM_DEADLOCK");
  if (setting == nullptr || *setting == '\0') return;
  const std::string_view mode(setting);
  if (mode == "report") {
    diagnostics::enable({.mode = diagnostics::Mode::report});
  } else if (mode == "abort") {
    diagnostics::enable({.mode = diagnostics::Mode::abort});
  } else if (mode != "off") {
    throw Error("tandem::init: TANDEM_DEADLOCK=" + std::string(mode) + " is not one of report, abort, off");
  }
}

}  // namespace

void init(int, char**) {
  if (int fds[4]; spawned_as(detail::kWorkerVariable, fds)) {
    detail::worker_main_from_fds(fds[0], fds[1], fds[2], fds[3]);
  }
  if (int fds[2]; spawned_as(detail::kProcessVariable, fds)) detail::run_process_from_fds(fds[0], fds[1]);
  detail::ensure_fork_server();
  // After the fork server, which starts while the program has one thread (the diagnostics start
  // a watchdog thread); its children join the session when they start.
  enable_diagnostics_from_environment();
  init_ran.store(true, std::memory_order_release);
}

bool initialized() noexcept { return init_ran.load(std::memory_order_acquire); }

}  // namespace tandem
