#include "tandem/cpu.hpp"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <thread>

namespace tandem {
namespace {

std::size_t affinity_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return static_cast<std::size_t>(CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

// cgroup v2 "cpu.max" reads "<quota> <period>" or "max <period>"; v1 has two files.
std::size_t quota_cpus() {
  std::size_t limit = 0;
  if (std::ifstream v2("/sys/fs/cgroup/cpu.max"); v2) {
    std::string quota;
    double period = 0;
    if (v2 >> quota >> period && quota != "max" && period > 0) {
      limit = static_cast<std::size_t>(std::ceil(std::stod(quota) / period));
    }
  } else {
    std::ifstream q("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), p("/sys/fs/cgroup/cpu/cpu.cfs_period_us");
    double quota = -1, period = 0;
    if (q >> quota && p >> period && quota > 0 && period > 0) limit = static_cast<std::size_t>(std::ceil(quota / period));
  }
  return limit;
}

}  // namespace

std::size_t cpu_count() {
  std::size_t cpus = affinity_cpus();
  if (const std::size_t quota = quota_cpus(); quota > 0) cpus = std::min(cpus, quota);
  return std::max<std::size_t>(cpus, 1);
}

}  // namespace tandem
