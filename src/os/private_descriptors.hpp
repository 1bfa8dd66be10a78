// A worker's own descriptors (its channel to the pool, its wake-up descriptor, its memory files)
// live far above the numbers a program usually has, so that a task that closes 3..1023, or
// dup2()s its log over a low number, never meets them. What the task may still do (close them
// all) makes the worker's next use of them fail, and the worker then exits: its pool sees a
// death, not a hang.
#pragma once

namespace tandem::detail {

// In a worker process, before it makes or receives descriptors: raises the soft descriptor limit
// (within the hard one) and sets the floor that out_of_the_way() moves descriptors above.
void keep_private_descriptors_high() noexcept;

// `fd` itself, or, in a process that called keep_private_descriptors_high(), a close-on-exec
// duplicate above the floor (the original is closed). -1 stays -1.
int out_of_the_way(int fd) noexcept;

}  // namespace tandem::detail
