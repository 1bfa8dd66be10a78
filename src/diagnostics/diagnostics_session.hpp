// How a process started by a fork server or afresh (spawn) joins the diagnostics of the program
// that started it: the parent writes this context ahead of the child's request, the child reads
// it first. (A forked child inherits the parent's session as it is.)
#pragma once

#include "tandem/detail/codec.hpp"

namespace tandem::detail {

void encode_diagnostics_context(ByteWriter& out);
void adopt_diagnostics_context(ByteReader& in);

}  // namespace tandem::detail
