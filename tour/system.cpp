#include "system.hpp"

#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tandem/cpu.hpp"

namespace tandem::tour {
namespace {

std::string shell_quoted(const std::string& word) {
  std::string quoted = "'";
  for (char c : word) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

std::string compiler() {
#if defined(__clang__)
  std::string version = __clang_version__;  // ends in a space
  while (!version.empty() && version.back() == ' ') version.pop_back();
  return "Clang " + version;
#elif defined(__GNUC__)
  return "GCC " __VERSION__;
#else
  return "an unknown compiler";
#endif
}

}  // namespace

std::optional<std::filesystem::path> find_program(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const auto candidate = std::filesystem::path(dir.empty() ? "." : dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0 && !std::filesystem::is_directory(candidate)) return candidate;
  }
  return std::nullopt;
}

CommandResult run_command(const std::vector<std::string>& argv, bool merge_stderr) {
  // popen needs a shell line; every word is quoted, so paths with spaces or quotes are safe.
  std::string line;
  for (const auto& word : argv) {
    if (!line.empty()) line += ' ';
    line += shell_quoted(word);
  }
  if (merge_stderr) line += " 2>&1";
  std::fflush(nullptr);  // the child must not inherit, and later repeat, our unwritten output
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(line.c_str(), "r"), ::pclose);
  if (!pipe) throw std::runtime_error("cannot run " + line);
  CommandResult result{0, {}};
  char buffer[4096];
  while (const std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe.get())) result.output.append(buffer, n);
  const int status = ::pclose(pipe.release());
  if (status == -1) throw std::runtime_error("cannot collect the exit status of " + line);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

std::string machine_description() {
  utsname system{};
  ::uname(&system);
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  ::gmtime_r(&now, &utc);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", &utc);
#ifdef __OPTIMIZE__
  const char* build = "optimized";
#else
  const char* build = "NOT optimized (a debug build: the timings mean little)";
#endif
  return std::string("Measured ") + date + " on " + system.sysname + " " + system.release + " (" + system.machine +
         "), tandem::cpu_count() = " + std::to_string(cpu_count()) + " usable CPUs (" +
         std::to_string(std::thread::hardware_concurrency()) + " online); compiled with " + compiler() + ", " + build +
         ".";
}

}  // namespace tandem::tour
