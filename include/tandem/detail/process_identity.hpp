// A process named so that a reused pid is not mistaken for it: its pid and its start time
// (/proc/<pid>/stat). Shared objects record who holds or waits on them this way, to tell a dead
// holder from a live one.
#pragma once

#include <chrono>
#include <cstdint>

namespace tandem::detail {

// How often an agent that waits on a shared object looks for holders or peers that died.
inline constexpr std::chrono::milliseconds kLivenessCheckEvery{50};

struct ProcessIdentity {
  std::int32_t pid = 0;  // 0: nobody
  std::uint64_t start_time = 0;

  // The calling process (cached per process, re-read after a fork).
  static ProcessIdentity self();
  // The process `pid` names now (start time 0, never alive, if it is gone).
  static ProcessIdentity of(std::int32_t pid);
  // False once the process has exited, even if not yet reaped, or its pid now names another.
  bool alive() const;
  bool operator==(const ProcessIdentity&) const = default;
};

}  // namespace tandem::detail
