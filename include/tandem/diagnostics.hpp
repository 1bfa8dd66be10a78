// Pitfall diagnostics: tandem watches its own locks, conditions, queues, futures and pools and
// reports the classic bugs of parallel code, across threads and processes alike, instead of
// leaving the program to hang.
//
//   tandem::diagnostics::enable();              // or run the program with TANDEM_DEADLOCK=report
//
// What it finds (docs/pitfalls.md has the details and the costs):
// - lock_order: a lock taken while holding another, in the reverse of an order seen before. Both
//   orders together can deadlock; the report names the locks, the agents and both code sites
//   (symbolized stacks), at the acquisition that closes the cycle, before anything hangs.
// - deadlock: agents that wait for each other (locks, queues, conditions, futures), found by a
//   watchdog within a second. In Mode::abort the program stops with the report instead of hanging.
// - starvation: an agent that has waited for a lock longer than a threshold, with the lock's
//   holders meanwhile and the time waited. tandem::FairLock is the cure.
// - stall: a pool whose workers are all busy and that has finished no task for a while (a
//   livelock, or tasks that wait for each other). tandem::Backoff cures polite-retry livelocks.
//
// Diagnostics cover the calling process and every agent it starts afterwards (threads,
// processes of any start method, pool workers): they share one graph in shared memory. Enable
// them before starting the agents to watch. The watchdog runs in the process that enabled them.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::diagnostics {

enum class Mode {
  off,
  report,  // print each finding to stderr and keep it in reports()
  abort,   // as report, then stop the program at a lock-order cycle or a deadlock
};

struct Options {
  Mode mode = Mode::report;
  // How often the watchdog looks at who waits for whom; a deadlock is reported after two looks.
  std::chrono::milliseconds watchdog_period{100};
  // A lock wait longer than this is reported as starvation (once per wait).
  std::chrono::milliseconds starvation_threshold{1000};
  // A pool with every worker busy and no task finished for this long is reported as stalled.
  std::chrono::milliseconds stall_threshold{2000};
  // Findings go to stderr as well as to reports(); tests turn this off.
  bool print = true;
};

enum class Finding { lock_order, deadlock, starvation, stall };
std::string_view to_string(Finding finding) noexcept;

struct Report {
  Finding finding;
  int pid;           // the process that made the finding
  std::string text;  // what a person reads; its first line says what was found
};

// Starts the diagnostics for this program (tandem::Error for bad options). Called again, it
// applies the new options and keeps what was found so far. tandem::init calls it when the
// environment says TANDEM_DEADLOCK=report or TANDEM_DEADLOCK=abort.
void enable(const Options& options = {});
// Stops the diagnostics and the watchdog, and forgets the graph and the reports.
void disable();
// Mode::off when disabled.
Mode mode() noexcept;

// Every finding of the program so far (all its processes), oldest first; the oldest are dropped
// past 64 findings.
std::vector<Report> reports();
void clear_reports();

}  // namespace tandem::diagnostics
