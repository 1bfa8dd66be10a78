// Who this process is among tandem's processes, and which Process children it started: what
// current_process(), parent_process() and active_children() report (process.hpp).
#pragma once

#include <string>

#include "tandem/detail/byte_buffer.hpp"
#include "tandem/detail/process_identity.hpp"
#include "tandem/process.hpp"

namespace tandem::detail {

// Called in a child as it starts: its own name, and the process that asked for it.
void become_child(std::string name, ProcessInfo parent);

// Writes what a child started from bytes (forkserver, spawn) reads with adopt_family: the name
// it is to have, and this process as its parent.
void encode_family(ByteWriter& out, const std::string& child_name);
void adopt_family(ByteReader& in);

// A started Process child, until it is reaped.
void add_child(const ProcessIdentity& child, const std::string& name);
void remove_child(long pid);

}  // namespace tandem::detail
