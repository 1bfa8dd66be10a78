// The calling thread's stack as text, symbolized with GCC's libbacktrace (function, file and line
// where the binary has debug information; function names from the symbol table otherwise).
#pragma once

#include <string>

namespace tandem::detail {

// Up to `max_frames` frames of the calling thread's stack, innermost first after `skip` more,
// from the first frame outside tandem's own code on (so the first is the code that called into
// tandem), one per line, each line starting with `indent`.
std::string stack_trace(int skip, int max_frames, const char* indent);

}  // namespace tandem::detail
