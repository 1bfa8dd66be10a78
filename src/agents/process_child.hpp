// The child side of a tandem::Process started by a fork server or afresh (spawn): it finds its
// callable's bytes in a memory file and reports an escaped exception through a pipe.
#pragma once

namespace tandem::detail {

// Runs the callable that `request_fd` (a memfd holding a ProcessBody's request) describes and
// exits: 0, or 1 after writing "type\0message" of an escaped exception to `error_fd`.
[[noreturn]] void run_process_from_fds(int request_fd, int error_fd);

}  // namespace tandem::detail
