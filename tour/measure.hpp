// Timing helpers for the sections: median of repeated runs.
#pragma once

#include <algorithm>
#include <chrono>
#include <vector>

namespace tandem::tour {

// Median wall time of `repeats` runs of f(), in seconds.
template <class F>
double median_seconds(int repeats, F&& f) {
  std::vector<double> samples;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    f();
    samples.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

}  // namespace tandem::tour
