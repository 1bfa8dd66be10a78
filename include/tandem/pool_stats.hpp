// PoolStats: a snapshot of what a pool (ThreadPool, ProcessPool) is doing now, cheap enough to
// read in a loop (no lock a task holds; a few atomic loads per worker).
//
//   tandem::PoolStats now = pool.stats();   // now.busy of now.live workers, now.queued waiting
#pragma once

#include <cstddef>

namespace tandem {

struct PoolStats {
  // The configured count, pool.size().
  std::size_t workers = 0;
  // Workers that exist now: fewer than `workers` after shutdown, and for a ProcessPool while a
  // lost worker is being replaced.
  std::size_t live = 0;
  // Workers running a task.
  std::size_t busy = 0;
  // Tasks submitted and not yet begun (a map's chunks count one each).
  std::size_t queued = 0;
};

}  // namespace tandem
