// The names of named shared memory this process created are handed to a small helper process,
// which removes those still there once this process is gone, so that even a creator killed by
// SIGKILL leaves nothing in /dev/shm. A janitor that is itself killed is replaced on the next
// name, and told every name still tracked.
#pragma once

#include <sys/types.h>

#include <string>

namespace tandem::detail {

// From now on, `name` is removed when this process ends, however it ends.
void janitor_track(const std::string& name);
// This process removed `name` itself.
void janitor_forget(const std::string& name);
// The janitor's pid, 0 when this process has none (for the tests that kill it).
pid_t janitor_pid();

}  // namespace tandem::detail
