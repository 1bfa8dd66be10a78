#include "spawn_program.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "tandem/detail/unique_fd.hpp"
#include "tandem/error.hpp"
#include "tandem/start_method.hpp"

namespace tandem::detail {

pid_t spawn_program(const char* variable, std::initializer_list<int> fds, const char* who) {
  if (!initialized()) {
    throw Error(std::string(who) +
                ": StartMethod::spawn starts this program afresh, which needs tandem::init(argc, argv) at the top "
                "of main");
  }
  // Above the target numbers first, so that no dup2 below overwrites a source.
  std::vector<UniqueFd> sources;
  std::string numbers;
  for (const int fd : fds) {
    sources.emplace_back(::fcntl(fd, F_DUPFD_CLOEXEC, 3 + static_cast<int>(fds.size())));
    if (!sources.back()) throw Error(std::string(who) + ": spawn: fcntl: " + std::strerror(errno));
    if (!numbers.empty()) numbers += ',';
    numbers += std::to_string(2 + sources.size());
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  for (std::size_t i = 0; i < sources.size(); ++i) {
    posix_spawn_file_actions_adddup2(&actions, sources[i].get(), 3 + static_cast<int>(i));
  }
  std::vector<std::string> environment{std::string(variable) + "=" + numbers};
  for (char** entry = environ; *entry; ++entry) {
    const std::string_view name(*entry, std::strcspn(*entry, "="));
    const bool ours = name == kWorkerVariable || name == kProcessVariable;
    if (!ours) environment.emplace_back(*entry);
  }
  std::vector<char*> envp;
  for (auto& entry : environment) envp.push_back(entry.data());
  envp.push_back(nullptr);
  char program[] = "/proc/self/exe";
  char* argv[] = {program, nullptr};
  pid_t pid = -1;
  std::fflush(nullptr);  // else the copy could print the parent's buffered output too
  const int error = ::posix_spawn(&pid, program, &actions, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (error != 0) throw Error(std::string(who) + ": posix_spawn of /proc/self/exe: " + std::strerror(error));
  return pid;
}

}  // namespace tandem::detail
