// The tour's sections. Each measures one claim of the seed on this machine and returns what it
// found; a section never reports a number it did not measure. To add one: write a function of
// this shape in its own file, list it in main.cpp's kSections and in CMakeLists.txt.
#pragma once

#include <string>

#include "measure.hpp"
#include "tandem/diagnostics.hpp"
#include "progress.hpp"
#include "report.hpp"

namespace tandem::tour {

struct Options {
  bool quick = false;  // smaller sizes and fewer runs: a smoke test, not a measurement

  Repeats repeats() const { return quick ? Repeats{1, 3, 0.2} : Repeats{3, 15, 1.0}; }
  // How the report states `repeats()`.
  std::string repeats_text() const {
    const Repeats r = repeats();
    return "Each time is the median of at least " + counted(static_cast<std::size_t>(r.min_runs), "run") +
           "; a short measurement is repeated until the runs add up to about " + fixed(r.budget_seconds, 1) +
           " s (at most " + counted(static_cast<std::size_t>(r.max_runs), "run") + ").";
  }
};

using SectionFunction = Section (*)(const Options&, Progress&);

// The pitfall diagnostics, on for a scope: the sections that show them turn them on for
// themselves only, since the others measure locks without them.
class DiagnosticsOn {
 public:
  explicit DiagnosticsOn(const diagnostics::Options& options) { diagnostics::enable(options); }
  ~DiagnosticsOn() { diagnostics::disable(); }
  DiagnosticsOn(const DiagnosticsOn&) = delete;
  DiagnosticsOn& operator=(const DiagnosticsOn&) = delete;
};

// Threads and processes themselves: start-up cost, and whose memory a write lands in.
Section agents(const Options& options, Progress& progress);
// CPU-bound work: serial vs ThreadPool, beside the same experiment in Python's stdlib.
Section cpu_bound(const Options& options, Progress& progress);
// I/O-bound work: pages from a loopback server with latency, serial vs ThreadPools.
Section io_bound(const Options& options, Progress& progress);
// The race condition: a shared counter without and with tandem's guards, threads and processes.
Section race(const Options& options, Progress& progress);
// Deadlock: a lock-order inversion and a lock-and-queue deadlock, as the diagnostics report them.
Section deadlock(const Options& options, Progress& progress);
// Starvation: agents contending for one lock, under tandem::Lock and under tandem::FairLock.
Section starvation(const Options& options, Progress& progress);
// Livelock: polite retries at a fixed pause vs tandem::Backoff, threads and processes.
Section livelock(const Options& options, Progress& progress);
// Isolation: crashing and hanging tasks on a ProcessPool, beside Python's ProcessPoolExecutor.
Section isolation(const Options& options, Progress& progress);

}  // namespace tandem::tour
