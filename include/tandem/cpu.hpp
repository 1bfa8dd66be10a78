// How many CPUs this process may really use: the default size of every tandem pool.
//
//   tandem::ThreadPool pool(tandem::cpu_count());
#pragma once

#include <cstddef>

namespace tandem {

// min(CPUs in this process's affinity mask, the cgroup CPU quota rounded up), at least 1.
// Unlike std::thread::hardware_concurrency it respects `taskset` and container limits.
std::size_t cpu_count();

}  // namespace tandem
