// Section: deadlock. tandem's pitfall diagnostics watch its locks and queues across threads and
// processes. A lock-order inversion is reported from the two orders alone, taken one after the
// other so that nothing hangs; an actual deadlock, a lock and a queue that two agents wait on
// crosswise, is reported by the watchdog, and the tour then breaks it by closing the queue. Then
// the cure: the same agents, taking the locks in one order and never waiting while holding one,
// run concurrently under the same watch and nothing is reported.
#include <unistd.h>

#include <chrono>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "sections.hpp"
#include "tandem/diagnostics.hpp"
#include "tandem/event.hpp"
#include "tandem/lock.hpp"
#include "tandem/process.hpp"
#include "tandem/queue.hpp"
#include "tandem/thread.hpp"
#include "tandem/value.hpp"

namespace tandem::tour {
namespace {

using namespace std::chrono_literals;
using diagnostics::Finding;


std::optional<diagnostics::Report> first_finding(Finding kind) {
  for (auto& report : diagnostics::reports()) {
    if (report.finding == kind) return std::move(report);
  }
  return std::nullopt;
}

// A report as a person reads it, with each stack cut to its first `frames` frames: the frames
// below them are the section's own machinery, the same in every report.
std::string with_short_stacks(const std::string& text, int frames) {
  std::istringstream lines(text);
  std::string shown;
  int frames_in_a_row = 0;
  for (std::string line; std::getline(lines, line);) {
    const auto first_character = line.find_first_not_of(' ');
    const bool frame = first_character != std::string::npos && line[first_character] == '#';
    frames_in_a_row = frame ? frames_in_a_row + 1 : 0;
    if (frames_in_a_row <= frames) {
      shown += line + '\n';
    } else if (frames_in_a_row == frames + 1) {
      shown += "      ...\n";
    }
  }
  return shown;
}

// Named and kept out of line, so that the report's stacks name the two sites.
[[gnu::noinline]] void take_accounts_then_audit(Lock accounts, Lock audit) {
  LockGuard first(accounts);
  LockGuard second(audit);
}

[[gnu::noinline]] void take_audit_then_accounts(Lock accounts, Lock audit) {
  LockGuard first(audit);
  LockGuard second(accounts);
}

// A holds the ledger and waits for the next job; B, the only agent that ever put a job, waits
// for the ledger. Neither can go on until the queue is closed.
[[gnu::noinline]] void hold_ledger_then_get(Lock ledger, Queue<int> jobs, Event holding) {
  jobs.get();
  LockGuard guard(ledger);
  holding.set();
  try {
    jobs.get();
  } catch (const QueueClosed&) {
  }
}

[[gnu::noinline]] void put_then_take_ledger(Lock ledger, Queue<int> jobs, Event holding) {
  jobs.put(1);
  holding.wait();
  LockGuard guard(ledger);
}

// The cure of both: one lock order ('accounts' before 'audit'), and the ledger taken only once the
// job is in hand. The putter and the getter do this at the same time until the putter's deadline
// (steady-clock nanoseconds, the same clock in every process), then the putter sends -1.
void transfer_in_one_order(Lock accounts, Lock audit, Value<long> transfers) {
  LockGuard first(accounts);
  LockGuard second(audit);
  transfers.store(transfers.load() + 1);
}

[[gnu::noinline]] void put_jobs_in_one_order(Lock accounts, Lock audit, Lock ledger, Queue<int> jobs,
                                             Value<long> transfers, Value<long> jobs_put, std::int64_t until_ns) {
  int round = 0;
  for (; std::chrono::steady_clock::now().time_since_epoch().count() < until_ns; ++round) {
    transfer_in_one_order(accounts, audit, transfers);
    jobs.put(round);
    LockGuard guard(ledger);
  }
  jobs_put.store(round);
  jobs.put(-1);
}

[[gnu::noinline]] void get_jobs_in_one_order(Lock accounts, Lock audit, Lock ledger, Queue<int> jobs,
                                             Value<long> transfers) {
  try {
    for (;;) {
      transfer_in_one_order(accounts, audit, transfers);
      if (jobs.get() < 0) return;
      LockGuard guard(ledger);
    }
  } catch (const QueueClosed&) {
  }
}

}  // namespace

Section deadlock(const Options& options, Progress& progress) {
  progress.plan(3);
  const diagnostics::Options watch{.mode = diagnostics::Mode::report, .print = false};
  const auto watchdog_ms = watch.watchdog_period.count();
  constexpr auto kReportDeadline = 1s;  // what the diagnostics promise for a deadlock
  const ProcessOptions forkserver{.start_method = StartMethod::forkserver};
  Section section;
  section.title = "Deadlock: reported, not hung";
  section.setup =
      "tandem::diagnostics::enable() (report mode, watchdog every " + std::to_string(watchdog_ms) +
      " ms) for this section only. (a) A lock-order inversion: a thread takes Lock 'accounts' then 'audit' and "
      "ends; then a process (forkserver) takes 'audit' then 'accounts'. One after the other, so nothing can hang. "
      "(b) A real deadlock: a thread takes Lock 'ledger' and waits to get from Queue 'jobs', which only a process "
      "(forkserver) has put into, while that process waits for 'ledger'. The tour polls the reports every 2 ms, "
      "then breaks the deadlock by closing the queue. (c) The cure, under a fresh watch: a thread and a process in "
      "the same roles, at the same time, each taking 'accounts' then 'audit' (one order) and the getter taking 'ledger' "
      "only once get() has returned (no lock held while waiting), over a Queue of at most 2 jobs, for " + std::string(options.quick ? "0.5" : "1") +
      " s.";
  Table table{{"pitfall planted", "agents", "reported", "reported by", "when"}, {}};
  std::optional<DiagnosticsOn> diagnostics_on(std::in_place, watch);

  progress.step("lock-order inversion: a thread, then a process");
  Lock accounts("accounts"), audit("audit");
  Thread first_order(&take_accounts_then_audit, accounts, audit);
  first_order.start();
  first_order.join();
  Process second_order(forkserver, &take_audit_then_accounts, accounts, audit);
  second_order.start();
  second_order.join();
  const auto inversion = first_finding(Finding::lock_order);
  if (!inversion) throw std::runtime_error("the lock-order inversion was not reported");
  const bool by_closer = inversion->pid == second_order.pid();
  table.rows.push_back({"lock order inversion 'accounts'/'audit'", "a thread, then a process", "yes",
                        "process " + std::to_string(inversion->pid) + (by_closer ? " (the second agent)" : ""),
                        "as the second order was taken; nothing hung"});
  section.excerpts.push_back(
      {"The lock-order report (each stack cut to two frames)", with_short_stacks(inversion->text, 2)});
  const bool names_both_sites = inversion->text.find("take_accounts_then_audit") != std::string::npos &&
                                inversion->text.find("take_audit_then_accounts") != std::string::npos;

  progress.step("a deadlock over a lock and a queue: a thread and a process");
  Lock ledger("ledger");
  Queue<int> jobs(QueueOptions{.name = "jobs"});
  Event holding;
  Thread getter(&hold_ledger_then_get, ledger, jobs, holding);
  Process putter(forkserver, &put_then_take_ledger, ledger, jobs, holding);
  getter.start();
  putter.start();
  // From here the getter is about to wait on the queue and the putter on the ledger.
  holding.wait();
  const auto blocked_since = std::chrono::steady_clock::now();
  std::optional<diagnostics::Report> deadlock;
  while (!(deadlock = first_finding(Finding::deadlock)) && std::chrono::steady_clock::now() - blocked_since < 5s) {
    std::this_thread::sleep_for(2ms);
  }
  const auto latency = std::chrono::steady_clock::now() - blocked_since;
  const std::string latency_text = fixed(std::chrono::duration<double, std::milli>(latency).count(), 0) + " ms";
  jobs.close();
  getter.join();
  putter.join();
  if (!deadlock) throw std::runtime_error("the deadlock was not reported within " + latency_text);
  if (latency > kReportDeadline) {
    throw std::runtime_error("the deadlock was reported after " + latency_text + ", not within 1 s");
  }
  table.rows.push_back({"deadlock: lock 'ledger' and a queue", "a thread and a process", "yes",
                        "process " + std::to_string(deadlock->pid) +
                            (deadlock->pid == ::getpid() ? " (the tour's watchdog)" : ""),
                        latency_text + " after both blocked"});
  section.excerpts.push_back({"The deadlock report", deadlock->text});

  progress.step("the cure: one lock order, no lock held while waiting");
  diagnostics_on.reset();
  diagnostics_on.emplace(watch);
  // Several looks of the watchdog while both agents run: a false report would have time to come.
  const auto cure_run = options.quick ? 500ms : 1000ms;
  Lock one_accounts("accounts"), one_audit("audit"), one_ledger("ledger");
  Queue<int> one_jobs(QueueOptions{.maxsize = 2, .name = "jobs"});
  Value<long> transfers(0), jobs_put(0);
  const auto cure_started = std::chrono::steady_clock::now();
  Thread cured_getter(&get_jobs_in_one_order, one_accounts, one_audit, one_ledger, one_jobs, transfers);
  Process cured_putter(forkserver, &put_jobs_in_one_order, one_accounts, one_audit, one_ledger, one_jobs, transfers,
                       jobs_put, (cure_started + cure_run).time_since_epoch().count());
  cured_getter.start();
  cured_putter.start();
  cured_putter.join();
  one_jobs.close();  // frees the getter should the putter have died before its -1
  cured_getter.join();
  const auto cure_time = std::chrono::steady_clock::now() - cure_started;
  // Two more looks of the watchdog, so that a report on the last rounds would be in.
  std::this_thread::sleep_for(2 * watch.watchdog_period);
  const auto cured_reports = diagnostics::reports();
  diagnostics_on.reset();
  // The putter's rounds, the getter's as many plus the one that received -1.
  const long expected_transfers = 2 * jobs_put.load() + 1;
  const int putter_exit = cured_putter.exitcode().value_or(-1);
  if (putter_exit != 0 || transfers.load() != expected_transfers) {
    throw std::runtime_error("the cured agents made " + std::to_string(transfers.load()) + " transfers, not " +
                             std::to_string(expected_transfers) + " (putter exit code " +
                             std::to_string(putter_exit) + ")");
  }
  table.rows.push_back({"cure: one lock order, 'ledger' taken after get()", "a thread and a process, concurrently",
                        cured_reports.empty() ? "no" : "YES: " + std::string(to_string(cured_reports.front().finding)),
                        "-",
                        std::to_string(transfers.load()) + " transfers in " +
                            fixed(std::chrono::duration<double, std::milli>(cure_time).count(), 0) + " ms"});
  if (!cured_reports.empty()) {
    section.excerpts.push_back({"An unexpected report on the cured agents", cured_reports.front().text});
  }
  section.tables.push_back(std::move(table));

  section.takeaways.push_back(
      std::string("The inversion was reported ") +
      (by_closer ? "by the process whose acquisition closed the cycle, " : "") +
      (names_both_sites ? "naming both code sites, " : "") +
      "though the two orders never overlapped in time: the report comes before the hang it predicts.");
  section.takeaways.push_back("The deadlock was reported " + latency_text +
                              " after both agents blocked (the watchdog reports a wait-for cycle it sees on two "
                              "looks " + std::to_string(watchdog_ms) +
                              " ms apart), naming who waits for what; closing the queue let both agents finish.");
  section.takeaways.push_back(
      cured_reports.empty()
          ? "Cured, a thread and a process in the same roles made " + std::to_string(transfers.load()) +
                " transfers in " + fixed(std::chrono::duration<double>(cure_time).count(), 1) +
                " s under the same watch, over several of the watchdog's looks, and nothing was reported: one lock "
                "order leaves no cycle to predict, and a wait with no lock held leaves none to find."
          : "Cured, the agents still drew a report, which the diagnostics should not have made: see the excerpt.");
  return section;
}

}  // namespace tandem::tour
