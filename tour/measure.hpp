// Timing for the sections: the median of repeated runs, repeated more often when a run is short,
// since a short run is the one a stray wake-up or page fault distorts most.
#pragma once

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <vector>

namespace tandem::tour {

// How often a measurement is repeated: at least `min_runs` times, then again while the runs so
// far took less than `budget_seconds` in total, up to `max_runs`.
struct Repeats {
  int min_runs;
  int max_runs;
  double budget_seconds;
};

struct Timing {
  double seconds;  // median wall time of one run
  int runs;        // how many runs the median is over
};

// Work that keeps the CPU for `duration`, e.g. what an agent does while it holds a lock: unlike
// a sleep it neither lets the scheduler move the agent off its core nor wakes up late.
inline void busy_for(std::chrono::nanoseconds duration) {
  const auto end = std::chrono::steady_clock::now() + duration;
  while (std::chrono::steady_clock::now() < end) {
  }
}

inline double median(std::vector<double> samples) {
  if (samples.empty()) throw std::logic_error("median of no samples");
  std::sort(samples.begin(), samples.end());
  const std::size_t middle = samples.size() / 2;
  return samples.size() % 2 ? samples[middle] : (samples[middle - 1] + samples[middle]) / 2;
}

template <class F>
Timing time_runs(const Repeats& repeats, F&& run) {
  std::vector<double> samples;
  double total = 0;
  while (static_cast<int>(samples.size()) < repeats.min_runs ||
         (total < repeats.budget_seconds && static_cast<int>(samples.size()) < repeats.max_runs)) {
    const auto start = std::chrono::steady_clock::now();
    run();
    samples.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    total += samples.back();
  }
  return {median(samples), static_cast<int>(samples.size())};
}

}  // namespace tandem::tour
