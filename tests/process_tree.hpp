// Test and soak helper: the process tree below this process, from /proc. Workers are
// grandchildren when a fork server starts them, so counting children is not enough.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

namespace test_support {

// The parent of `pid` (0 if it is gone).
inline long parent_of(long pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line) || line.rfind(')') == std::string::npos) return 0;
  long ppid = 0;
  std::sscanf(line.c_str() + line.rfind(')') + 2, "%*c %ld", &ppid);
  return ppid;
}

// Every process descended from this one (zombies included).
inline std::set<long> descendant_pids() {
  std::map<long, long> parent_of_pid;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;  // self, thread-self, ...
    if (const long ppid = parent_of(std::stol(name)); ppid != 0) parent_of_pid[std::stol(name)] = ppid;
  }
  std::set<long> found{static_cast<long>(::getpid())};
  for (bool grew = true; grew;) {
    grew = false;
    for (const auto& [pid, ppid] : parent_of_pid) {
      if (found.count(ppid) && found.insert(pid).second) grew = true;
    }
  }
  found.erase(static_cast<long>(::getpid()));
  return found;
}

}  // namespace test_support
