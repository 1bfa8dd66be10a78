// The names of named shared memory this process created are handed to a small helper process,
// which removes those still there once this process is gone, so that even a creator killed by
// SIGKILL leaves nothing in /dev/shm.
#pragma once

#include <string>

namespace tandem::detail {

// From now on, `name` is removed when this process ends, however it ends.
void janitor_track(const std::string& name);
// This process removed `name` itself.
void janitor_forget(const std::string& name);

}  // namespace tandem::detail
