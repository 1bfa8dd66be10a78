// oneTBB: task_group for the submit burst, parallel_for for map. Both run inside a task_arena
// of 2 slots (the caller plus one worker), the same two threads of work tandem's pool gets.
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>

#include <chrono>

#include "peers.hpp"

namespace tandem::bench {
namespace {

tbb::task_arena& arena() {
  static tbb::task_arena two_threads(2);
  return two_threads;
}

template <class F>
double seconds(F&& f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

double tbb_task_group_burst(std::size_t tasks) {
  return arena().execute([&] {
    return seconds([&] {
      tbb::task_group group;
      for (std::size_t i = 0; i < tasks; ++i) group.run([] {});
      group.wait();
    });
  });
}

double tbb_parallel_for_map(const std::vector<int>& in, bool preallocated_output) {
  static std::vector<int> reused;
  if (preallocated_output) reused.assign(in.size(), 0);
  return arena().execute([&] {
    return seconds([&] {
      std::vector<int> fresh;
      if (!preallocated_output) fresh.resize(in.size());
      std::vector<int>& out = preallocated_output ? reused : fresh;
      tbb::parallel_for(tbb::blocked_range<std::size_t>(0, in.size()), [&](const tbb::blocked_range<std::size_t>& r) {
        for (std::size_t i = r.begin(); i < r.end(); ++i) out[i] = in[i] * 2;
      });
    });
  });
}

}  // namespace tandem::bench
