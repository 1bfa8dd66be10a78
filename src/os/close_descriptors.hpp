// Closing what a new process inherited: a worker or a Process's child must not hold the parent's
// sockets, pipes or files open (a peer would never see them close).
#pragma once

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <initializer_list>
#include <vector>

namespace tandem::detail {

// Closes every descriptor above stdio but those in `keep`.
inline void close_descriptors_except(std::initializer_list<int> keep) {
  std::vector<int> kept(keep);
  std::sort(kept.begin(), kept.end());
  unsigned from = 3;
  for (const int fd : kept) {
    if (fd < static_cast<int>(from)) continue;
    if (fd > static_cast<int>(from)) ::syscall(SYS_close_range, from, static_cast<unsigned>(fd - 1), 0u);
    from = static_cast<unsigned>(fd) + 1;
  }
  ::syscall(SYS_close_range, from, ~0u, 0u);
}

}  // namespace tandem::detail
