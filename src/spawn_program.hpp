// StartMethod::spawn: this program started afresh (/proc/self/exe), told through one environment
// variable which role tandem::init gives it and where its descriptors are.
#pragma once

#include <sys/types.h>

#include <initializer_list>

namespace tandem::detail {

// Environment variables that tandem::init reads in a spawned copy of the program.
inline constexpr const char* kWorkerVariable = "TANDEM_WORKER";    // a ProcessPool worker
inline constexpr const char* kProcessVariable = "TANDEM_PROCESS";  // a Process's child

// Starts the program with `fds` at descriptors 3, 4, ... and `variable`="3,4,...". `who` names
// the caller in errors. tandem::Error if init() has not run here (the copy would run main as if
// it were the program) or if posix_spawn fails.
pid_t spawn_program(const char* variable, std::initializer_list<int> fds, const char* who);

}  // namespace tandem::detail
