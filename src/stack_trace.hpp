// The calling thread's stack as text, symbolized with GCC's libbacktrace (function, file and line
// where the binary has debug information; function names from the symbol table otherwise).
#pragma once

#include <string>

namespace tandem::detail {

// Up to `max_frames` frames, the caller of the caller of this function first after `skip` more;
// one frame per line, each line starting with `indent`.
std::string stack_trace(int skip, int max_frames, const char* indent);

}  // namespace tandem::detail
