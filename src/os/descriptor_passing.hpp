// Passing file descriptors between processes over a Unix socket (SCM_RIGHTS): how a fork server
// hands a new worker its mappings, and how a pool and a worker exchange the memory files of
// messages too large for their rings.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <initializer_list>
#include <vector>

#include "tandem/detail/unique_fd.hpp"

namespace tandem::detail {

inline constexpr std::size_t kMaxPassedDescriptors = 4;

// Sends `size` bytes (at least one) with up to kMaxPassedDescriptors descriptors attached.
// False if the peer is gone or the socket refused the message.
bool send_with_descriptors(int socket, const void* data, std::size_t size, std::initializer_list<int> fds);

// Receives one message into `data` (at most `size` bytes) and appends the descriptors attached
// to it to `fds`, close-on-exec. Returns the bytes received; 0 when `block` is false and nothing
// is waiting; kConnectionClosed at the end of the connection (or on an error).
inline constexpr long kConnectionClosed = -1;
long receive_with_descriptors(int socket, void* data, std::size_t size, std::vector<UniqueFd>& fds, bool block);

}  // namespace tandem::detail
