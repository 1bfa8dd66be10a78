// What the tour needs of the machine around it: finding and running helper programs (python3,
// gnuplot) and describing the machine for the report.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace tandem::tour {

// The executable `name` found on PATH, or nullopt: the tour then says what it skipped.
std::optional<std::filesystem::path> find_program(const std::string& name);

struct CommandResult {
  int exit_code;       // 128 + signal number when killed by a signal, as a shell reports it
  std::string output;  // stdout (and stderr too when asked for)
};

// Runs `argv` (no shell involved in its words) and collects its stdout; its stderr goes to ours
// unless `merge_stderr`, so a failing helper's traceback reaches the person watching.
CommandResult run_command(const std::vector<std::string>& argv, bool merge_stderr = false);

// "Measured <date> on <kernel> (<arch>), N usable CPUs (M online); compiled with <compiler>, ..."
std::string machine_description();

}  // namespace tandem::tour
