// Pools show the diagnostics' watchdog how busy they are, so it can report one that stalls: all
// workers busy and no task finished for longer than Options::stall_threshold.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace tandem::detail {

struct PoolActivity {
  std::string pool;             // "ThreadPool", "ProcessPool"
  std::size_t workers = 0;
  std::size_t busy = 0;         // workers running a task
  std::size_t queued = 0;       // tasks waiting for a worker
  std::uint64_t completed = 0;  // tasks finished so far
};

// Registers a pool's probe for its lifetime. The probe must not block: the watchdog calls it
// under the registry's lock, which is also what keeps the pool alive meanwhile.
class WatchedPool {
 public:
  explicit WatchedPool(std::function<PoolActivity()> probe);
  WatchedPool(const WatchedPool&) = delete;
  WatchedPool& operator=(const WatchedPool&) = delete;
  ~WatchedPool();

 private:
  std::uint64_t id_;
};

// (id, activity) of every pool of this process.
std::vector<std::pair<std::uint64_t, PoolActivity>> probe_watched_pools();

}  // namespace tandem::detail
