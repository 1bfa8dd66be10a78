// Starting this program afresh (/proc/self/exe) for a role of tandem's own: a ProcessPool
// worker or a Process child under StartMethod::spawn, or a fork server restarted after it was
// killed. The child learns its role and its descriptors from one environment variable, which
// tandem::init reads.
//
// The environment is not a way in. Whoever controls a program's environment and the descriptors
// it inherits must not be able to make it run a role (a role runs code named by bytes it is
// handed). So the variable is never honoured in a secure-execution (setuid, setgid, capability)
// process, and elsewhere only when the hand-over proves itself:
//  - a secret of 128 random bits, in the variable and in a sealed memory file the parent hands
//    over with the other descriptors (only the real parent knows both);
//  - every descriptor open and of the kind the role needs (memory file, eventfd, socket, pipe);
//  - the parent runs the same executable, and a socket handed over was made by the parent.
// Anything else (a malformed value, a wrong secret, a stray descriptor) is ignored with a warning
// on stderr: the program runs as itself, never exits for it, never calls anything for it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <vector>

namespace tandem::detail {

enum class Role : std::uint8_t { worker = 1, process = 2, fork_server = 3 };

inline constexpr const char* kHandoverVariable = "TANDEM_HANDOVER";

// Starts the program with the hand-over of `role` and `fds` (in that order; see the role's
// runner for what each must be). `who` names the caller in errors. tandem::Error if init() has
// not run here (the copy would run main as if it were the program) or if posix_spawn fails.
pid_t spawn_program(Role role, std::initializer_list<int> fds, const char* who);

struct Handover {
  Role role;
  std::vector<int> fds;
};

// In tandem::init: the hand-over this process was started with, once it has proved itself (see
// above); the variable is removed either way. Nothing when there is none or it does not prove
// itself (then a warning goes to stderr).
std::optional<Handover> receive_handover();

// The checks of receive_handover on a value: exposed for the tests and the fuzzer, which feed it
// any bytes. `environment_secure` stands for AT_SECURE. A description of what is wrong, or
// nothing when the hand-over is authentic (then `handover` holds it).
std::optional<const char*> check_handover(const char* value, bool environment_secure, Handover& handover);

}  // namespace tandem::detail
