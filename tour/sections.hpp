// The tour's sections. Each measures one claim of the seed on this machine and adds what it
// found to the report; a section never reports a number it did not measure.
#pragma once

#include <filesystem>

#include "progress.hpp"
#include "report.hpp"

namespace tandem::tour {

struct Options {
  bool quick = false;  // smaller sizes and fewer repeats: a smoke run
  int repeats() const { return quick ? 1 : 3; }
};

// 0. The agents themselves: start-up cost and memory, Thread vs Process.
Section agents(const Options& options, Progress& progress);
// 1. CPU-bound work: serial vs ThreadPool, and the same experiment in Python's stdlib.
Section cpu_bound(const Options& options, Progress& progress);
// 2. I/O-bound work: pages from a loopback server with latency, serial vs ThreadPools.
Section io_bound(const Options& options, Progress& progress);

}  // namespace tandem::tour
