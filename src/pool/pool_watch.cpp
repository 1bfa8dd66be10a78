#include "pool/pool_watch.hpp"

#include <map>
#include <mutex>

namespace tandem::detail {
namespace {

struct Registry {
  std::mutex mutex;
  std::uint64_t next_id = 1;
  std::map<std::uint64_t, std::function<PoolActivity()>> probes;
};

Registry& registry() {
  static Registry instance;
  return instance;
}

}  // namespace

WatchedPool::WatchedPool(std::function<PoolActivity()> probe) {
  Registry& r = registry();
  std::lock_guard guard(r.mutex);
  id_ = r.next_id++;
  r.probes.emplace(id_, std::move(probe));
}

WatchedPool::~WatchedPool() {
  Registry& r = registry();
  std::lock_guard guard(r.mutex);
  r.probes.erase(id_);
}

std::vector<std::pair<std::uint64_t, PoolActivity>> probe_watched_pools() {
  Registry& r = registry();
  std::lock_guard guard(r.mutex);
  std::vector<std::pair<std::uint64_t, PoolActivity>> activity;
  for (const auto& [id, probe] : r.probes) activity.emplace_back(id, probe());
  return activity;
}

}  // namespace tandem::detail
