// What the diagnostics' parts share inside the library: the watchdog (watchdog.cpp) reads the
// tables that the hooks (diagnostics.cpp) fill, and reports through the same channel.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "diagnostics/diagnostics_table.hpp"
#include "tandem/diagnostics.hpp"
#include "tandem/detail/tracking.hpp"

namespace tandem::detail {

// Keeps the finding in the table and prints it if the options say so.
void emit_finding(DiagnosticsTable& table, diagnostics::Finding finding, const std::string& text);
// The name recorded for `key`, or "<kind> #<short key>" when it has none.
std::string object_name(const DiagnosticsTable& table, std::uint64_t key, WaitKind kind);
// "thread 1234 "name" of process 1200".
std::string describe_agent(std::uint64_t agent, std::string_view thread_name);
std::string_view wait_kind_noun(WaitKind kind);
// 'text' (built by appending: GCC 12 warns falsely about "'" + std::string + "'").
std::string quoted(std::string_view text);

}  // namespace tandem::detail
