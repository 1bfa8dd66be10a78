#include <cstdlib>
#include <string>
#include <string_view>

#include <atomic>

#include "agents/fork_server.hpp"
#include "os/handover.hpp"
#include "agents/process_child.hpp"
#include "tandem/diagnostics.hpp"
#include "tandem/error.hpp"
#include "tandem/start_method.hpp"
#include "pool/worker.hpp"

namespace tandem {
namespace {

std::atomic<bool> init_ran{false};

// TANDEM_DEADLOCK=report|abort turns the pitfall diagnostics on for the whole program (never in a
// secure-execution program, whose environment is not its own).
void enable_diagnostics_from_environment() {
  const char* setting = ::secure_getenv("TANDEM_DEADLOCK");
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

[[noreturn]] void run_role(const detail::Handover& handover) {
  const auto& fds = handover.fds;
  switch (handover.role) {
    case detail::Role::worker:
      detail::worker_main_from_fds(fds[0], fds[1], fds[2], fds[3]);
    case detail::Role::process:
      detail::run_process_from_fds(fds[0], fds[1]);
    case detail::Role::fork_server:
      detail::run_fork_server_from_fd(fds[0]);
  }
  std::abort();  // unreachable: check_handover accepts only these roles
}

}  // namespace

void init(int, char**) {
  // First: every process started from here on (the fork server, its workers, a task's own pool)
  // knows that this program calls init, so that it may start copies of itself.
  init_ran.store(true, std::memory_order_release);
  if (auto handover = detail::receive_handover()) run_role(*handover);
  detail::ensure_fork_server();
  // After the fork server, which starts while the program has one thread (the diagnostics start
  // a watchdog thread); its children join the session when they start.
  enable_diagnostics_from_environment();
}

bool initialized() noexcept { return init_ran.load(std::memory_order_acquire); }

namespace {
std::atomic<StartMethod> program_start_method{kDefaultStartMethod};
}  // namespace

StartMethod default_start_method() noexcept { return program_start_method.load(std::memory_order_acquire); }

StartMethod set_default_start_method(StartMethod method) noexcept {
  return program_start_method.exchange(method, std::memory_order_acq_rel);
}

}  // namespace tandem
