// Pitfall diagnostics: each detector fires on its planted bug (two threads, two processes, a
// thread and a process) with a report that says what a person needs to fix it, and stays silent
// on correct code.
#include "tandem/diagnostics.hpp"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "agent_kinds.hpp"
#include "tandem/condition.hpp"
#include "tandem/error.hpp"
#include "tandem/event.hpp"
#include "tandem/fair_lock.hpp"
#include "tandem/lock.hpp"
#include "tandem/process_pool.hpp"
#include "tandem/queue.hpp"
#include "tandem/thread_pool.hpp"
#include "tandem/value.hpp"

using namespace std::chrono_literals;
using tandem::diagnostics::Finding;
using tandem::diagnostics::Report;

namespace {

#ifdef TANDEM_UNDER_TSAN
constexpr auto kSanitizerSlack = 3;
#elif defined(__SANITIZE_ADDRESS__)
constexpr auto kSanitizerSlack = 2;
#else
constexpr auto kSanitizerSlack = 1;
#endif

tandem::diagnostics::Options quick_options() {
  return {.mode = tandem::diagnostics::Mode::report,
          .watchdog_period = 50ms,
          .starvation_threshold = 300ms,
          .stall_threshold = 400ms,
          .print = false};
}

std::vector<Report> findings(Finding kind) {
  std::vector<Report> found;
  for (Report& report : tandem::diagnostics::reports()) {
    if (report.finding == kind) found.push_back(std::move(report));
  }
  return found;
}

// The first report of `kind` that arrives within `timeout`.
std::optional<Report> await_finding(Finding kind, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  do {
    if (auto found = findings(kind); !found.empty()) return found.front();
    std::this_thread::sleep_for(10ms);
  } while (std::chrono::steady_clock::now() < deadline);
  return std::nullopt;
}

std::string agent_text(const TestAgent& agent) {
  return "thread " + std::to_string(agent.tid()) + " ";
}
std::string process_text(const TestAgent& agent) { return "of process " + std::to_string(agent.pid()); }

class Diagnostics : public ::testing::Test {
 protected:
  void SetUp() override { tandem::diagnostics::enable(quick_options()); }
  void TearDown() override { tandem::diagnostics::disable(); }
};

class DiagnosticsOnAgents : public ::testing::TestWithParam<AgentKind> {
 protected:
  void SetUp() override { tandem::diagnostics::enable(quick_options()); }
  void TearDown() override { tandem::diagnostics::disable(); }
};

// ---- potential deadlocks: lock order ------------------------------------------------------------

// Named functions, so that the report's stacks can be checked for the two sites.
[[gnu::noinline]] void take_accounts_then_audit(tandem::Lock accounts, tandem::Lock audit) {
  tandem::LockGuard first(accounts);
  tandem::LockGuard second(audit);
}

[[gnu::noinline]] void take_audit_then_accounts(tandem::Lock accounts, tandem::Lock audit) {
  tandem::LockGuard first(audit);
  tandem::LockGuard second(accounts);
}

void expect_inversion_report(const TestAgent& first, const TestAgent& second) {
  const auto found = findings(Finding::lock_order);
  ASSERT_EQ(found.size(), 1u) << "one inversion, one report";
  const std::string& text = found.front().text;
  EXPECT_NE(text.find("lock order inversion between 'audit' and 'accounts'"), std::string::npos) << text;
  // The agent that closed the cycle, and the one that set up the other order, each with its site.
  EXPECT_NE(text.find(agent_text(second)), std::string::npos) << text;
  EXPECT_NE(text.find(process_text(second)), std::string::npos) << text;
  EXPECT_NE(text.find(agent_text(first)), std::string::npos) << text;
  EXPECT_NE(text.find(process_text(first)), std::string::npos) << text;
  EXPECT_NE(text.find("earlier, 'accounts' then 'audit'"), std::string::npos) << text;
  EXPECT_NE(text.find("now, 'audit' then 'accounts'"), std::string::npos) << text;
  EXPECT_NE(text.find("take_accounts_then_audit"), std::string::npos) << text;
  EXPECT_NE(text.find("take_audit_then_accounts"), std::string::npos) << text;
  EXPECT_EQ(found.front().pid, second.pid());
}

// The two orders are taken one after the other, so nothing hangs: the report comes from the
// order alone, which is the point.
TEST_P(DiagnosticsOnAgents, LockOrderInversionIsReportedBeforeItHangs) {
  tandem::Lock accounts("accounts"), audit("audit");
  TestAgent first(GetParam(), take_accounts_then_audit, accounts, audit);
  first.join();
  EXPECT_TRUE(findings(Finding::lock_order).empty());
  TestAgent second(GetParam(), take_audit_then_accounts, accounts, audit);
  second.join();
  expect_inversion_report(first, second);
}

TEST_F(Diagnostics, LockOrderInversionBetweenAThreadAndAProcess) {
  tandem::Lock accounts("accounts"), audit("audit");
  TestAgent first(AgentKind::thread, take_accounts_then_audit, accounts, audit);
  first.join();
  TestAgent second(AgentKind::spawn, take_audit_then_accounts, accounts, audit);
  second.join();
  expect_inversion_report(first, second);
}

TEST_F(Diagnostics, ALongerCycleNamesEveryOrderInIt) {
  tandem::Lock a("a"), b("b"), c("c");
  { tandem::LockGuard x(a); tandem::LockGuard y(b); }
  { tandem::LockGuard x(b); tandem::LockGuard y(c); }
  EXPECT_TRUE(findings(Finding::lock_order).empty());
  { tandem::LockGuard x(c); tandem::LockGuard y(a); }
  const auto found = findings(Finding::lock_order);
  ASSERT_EQ(found.size(), 1u);
  const std::string& text = found.front().text;
  EXPECT_NE(text.find("earlier, 'a' then 'b'"), std::string::npos) << text;
  EXPECT_NE(text.find("earlier, 'b' then 'c'"), std::string::npos) << text;
  EXPECT_NE(text.find("now, 'c' then 'a'"), std::string::npos) << text;
}

// Many locks, many agents, always in one order (with re-entry, try_lock and timed locks): silent.
void take_in_order(tandem::Lock l0, tandem::Lock l1, tandem::Lock l2, tandem::Lock l3, tandem::Lock l4,
                   tandem::Lock l5, tandem::RLock outer, int rounds) {
  tandem::Lock locks[] = {l0, l1, l2, l3, l4, l5};
  constexpr std::size_t kLocks = std::size(locks);
  for (int round = 0; round < rounds; ++round) {
    tandem::LockGuard guard(outer);
    tandem::LockGuard again(outer);
    for (std::size_t first = round % 3; first < kLocks; first += 3) {
      tandem::LockGuard a(locks[first]);
      for (std::size_t next = first + 1; next < kLocks; next += 2) {
        if (locks[next].try_lock_for(1s)) locks[next].unlock();
      }
      if (first + 1 < kLocks && locks[first + 1].try_lock()) locks[first + 1].unlock();
    }
  }
}

TEST_P(DiagnosticsOnAgents, ConsistentOrderIsNeverReported) {
  tandem::Lock l0("lock-0"), l1("lock-1"), l2("lock-2"), l3("lock-3"), l4("lock-4"), l5("lock-5");
  tandem::RLock outer("outer");
  TestAgent a(GetParam(), take_in_order, l0, l1, l2, l3, l4, l5, outer, 300);
  TestAgent b(AgentKind::thread, take_in_order, l0, l1, l2, l3, l4, l5, outer, 300);
  take_in_order(l0, l1, l2, l3, l4, l5, outer, 300);
  a.join();
  b.join();
  std::this_thread::sleep_for(200ms);  // a few watchdog looks at the quiet program
  // (Starvation may be reported: the outer RLock is fought over, and that is not wrong.)
  for (const Finding kind : {Finding::lock_order, Finding::deadlock}) {
    const auto found = findings(kind);
    EXPECT_TRUE(found.empty()) << found.front().text;
  }
}

TEST_F(Diagnostics, RetakingAHeldRLockUnderAnotherLockIsNoInversion) {
  tandem::RLock outer("outer");
  tandem::Lock log("log");
  tandem::Value<long> counter(0);
  {
    tandem::LockGuard a(outer);
    tandem::LockGuard b(log);
    tandem::LockGuard again(outer);
  }
  {
    // The Value idiom: its own RLock held, another lock, then store() re-takes the RLock.
    tandem::LockGuard held(counter.get_lock());
    tandem::LockGuard b(log);
    counter.store(counter.load() + 1);
  }
  EXPECT_TRUE(findings(Finding::lock_order).empty()) << findings(Finding::lock_order).front().text;
}

TEST_F(Diagnostics, AReverseOrderTakenWithATimeoutIsNoInversion) {
  tandem::Lock a("a"), b("b");
  { tandem::LockGuard x(a); tandem::LockGuard y(b); }
  {
    tandem::LockGuard y(b);
    ASSERT_TRUE(a.try_lock_for(1s));  // gives up by itself: the correct way to take it backwards
    a.unlock();
  }
  EXPECT_TRUE(findings(Finding::lock_order).empty()) << findings(Finding::lock_order).front().text;
}

// ---- actual deadlocks: the watchdog -------------------------------------------------------------

// A takes the ledger, then waits for the next job; B, the only producer of jobs, waits for the
// ledger. Nobody can go on: closing the queue breaks it afterwards.
template <class AnyLock>
[[gnu::noinline]] void hold_ledger_then_get(AnyLock ledger, tandem::Queue<int> jobs, tandem::Event holding) {
  jobs.get();
  tandem::LockGuard guard(ledger);
  holding.set();
  try {
    jobs.get();
  } catch (const tandem::QueueClosed&) {
  }
}

template <class AnyLock>
[[gnu::noinline]] void put_then_take_ledger(AnyLock ledger, tandem::Queue<int> jobs, tandem::Event holding) {
  jobs.put(1);
  holding.wait();
  tandem::LockGuard guard(ledger);
}

template <class AnyLock = tandem::Lock>
void lock_and_queue_deadlock_is_reported(AgentKind getter_kind, AgentKind putter_kind) {
  AnyLock ledger("ledger");
  tandem::Queue<int> jobs;
  tandem::Event holding;
  TestAgent getter(getter_kind, hold_ledger_then_get<AnyLock>, ledger, jobs, holding);
  TestAgent putter(putter_kind, put_then_take_ledger<AnyLock>, ledger, jobs, holding);
  holding.wait();
  const auto since = std::chrono::steady_clock::now();
  const auto report = await_finding(Finding::deadlock, 5s);
  const auto latency = std::chrono::steady_clock::now() - since;
  jobs.close();
  getter.join();
  putter.join();
  ASSERT_TRUE(report.has_value()) << "no deadlock report";
  EXPECT_LT(latency, 1s * kSanitizerSlack) << "a deadlock must be reported within a second";
  const std::string& text = report->text;
  EXPECT_NE(text.find("deadlock: 2 agents wait for each other"), std::string::npos) << text;
  EXPECT_NE(text.find(agent_text(getter)), std::string::npos) << text;
  EXPECT_NE(text.find(agent_text(putter)), std::string::npos) << text;
  EXPECT_NE(text.find("waits to get from queue"), std::string::npos) << text;
  EXPECT_NE(text.find("which only " + agent_text(putter)), std::string::npos) << text;
  EXPECT_NE(text.find("waits for lock 'ledger', held by " + agent_text(getter)), std::string::npos) << text;
  EXPECT_NE(text.find(process_text(getter) + " (for"), std::string::npos) << text;
  EXPECT_NE(text.find("it holds 'ledger'"), std::string::npos) << text;
  EXPECT_EQ(findings(Finding::deadlock).size(), 1u) << "one deadlock, one report";
}

TEST_P(DiagnosticsOnAgents, LockAndQueueDeadlockIsReportedWithinASecond) {
  lock_and_queue_deadlock_is_reported(GetParam(), GetParam());
}

TEST_F(Diagnostics, DeadlockBetweenAThreadAndAProcessIsReported) {
  lock_and_queue_deadlock_is_reported(AgentKind::thread, AgentKind::forkserver);
}

TEST_F(Diagnostics, DeadlockOverAFairLockIsReported) {
  lock_and_queue_deadlock_is_reported<tandem::FairLock>(AgentKind::thread, AgentKind::spawn);
}

TEST_F(Diagnostics, FairLocksAndLocksShareTheOrderGraph) {
  tandem::FairLock printer("printer");
  tandem::Lock spool("spool");
  std::thread([&] {
    tandem::LockGuard first(printer);
    tandem::LockGuard second(spool);
  }).join();
  {
    tandem::LockGuard first(spool);
    tandem::LockGuard second(printer);
  }
  const auto found = findings(Finding::lock_order);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_NE(found.front().text.find("lock order inversion between 'spool' and 'printer'"), std::string::npos)
      << found.front().text;
}

// The notifier notifies once before the waiter waits (so it is a known notifier, and the wait
// that follows does not see that notify).
[[gnu::noinline]] void hold_ledger_then_wait(tandem::Lock ledger, tandem::Condition ready, tandem::Event notified,
                                             tandem::Event holding) {
  notified.wait();
  tandem::LockGuard guard(ledger);
  tandem::LockGuard waiting(ready);
  holding.set();
  ready.wait();
}

[[gnu::noinline]] void notify_then_take_ledger(tandem::Lock ledger, tandem::Condition ready, tandem::Event notified,
                                               tandem::Event holding) {
  ready.notify_all();
  notified.set();
  holding.wait();
  tandem::LockGuard guard(ledger);
}

TEST_P(DiagnosticsOnAgents, LockAndConditionDeadlockIsReported) {
  tandem::Lock ledger("ledger");
  tandem::Condition ready{tandem::Lock("ready")};
  tandem::Event notified, holding;
  TestAgent waiter(GetParam(), hold_ledger_then_wait, ledger, ready, notified, holding);
  TestAgent notifier(AgentKind::thread, notify_then_take_ledger, ledger, ready, notified, holding);
  holding.wait();
  const auto report = await_finding(Finding::deadlock, 5s);
  ready.notify_all();
  waiter.join();
  notifier.join();
  ASSERT_TRUE(report.has_value()) << "no deadlock report";
  const std::string& text = report->text;
  EXPECT_NE(text.find("waits on condition 'ready', which only " + agent_text(notifier)), std::string::npos) << text;
  EXPECT_NE(text.find("waits for lock 'ledger', held by " + agent_text(waiter)), std::string::npos) << text;
}

// A task waits for the lock that the thread waiting for the task's future holds. Run in a child
// process, which is killed once the parent's watchdog has reported it.
[[gnu::noinline]] void wait_for_own_task_while_holding(tandem::Lock ledger) {
  tandem::ThreadPool pool(1);
  tandem::LockGuard guard(ledger);
  pool.submit([ledger]() mutable { tandem::LockGuard inner(ledger); }).get();
}

// A forked child holds lock 'ledger' in `holder` and waits for a task that needs it: the deadlock
// report on it, checked for the two waits, and how the child appears in reports.
struct FutureDeadlock {
  std::string text;
  std::string child_thread;  // "thread <tid> "
  std::string child;         // "thread <tid> "<name>" of process <pid>"
};

FutureDeadlock future_deadlock_report(void (*holder)(tandem::Lock)) {
  tandem::Lock ledger("ledger");
  TestAgent child(AgentKind::fork, holder, ledger);
  const auto report = await_finding(Finding::deadlock, 5s);
  child.kill();
  try {
    child.join();
  } catch (const std::exception&) {
  }
  if (!report.has_value()) return {};
  EXPECT_NE(report->text.find("waits for the future of a task that runs on thread"), std::string::npos)
      << report->text;
  EXPECT_NE(report->text.find("waits for lock 'ledger', held by " + agent_text(child)), std::string::npos)
      << report->text;
  return {report->text, agent_text(child), agent_text(child) + "\"diagnostics_tes\" " + process_text(child)};
}

TEST_F(Diagnostics, FutureAndLockDeadlockIsReported) {
  EXPECT_NE(future_deadlock_report(wait_for_own_task_while_holding).text, "") << "no deadlock report";
}

// The same across processes: the task runs in a ProcessPool worker, which waits for the lock that
// the thread waiting for the task's future holds.
[[gnu::noinline]] void wait_for_pool_task_while_holding(tandem::Lock ledger) {
  tandem::ProcessPoolOptions options;
  options.workers = 1;
  options.start_method = tandem::StartMethod::fork;
  tandem::ProcessPool pool(options);
  tandem::LockGuard guard(ledger);
  pool.submit([](tandem::Lock lock) { tandem::LockGuard inner(lock); }, ledger).get();
}

TEST_F(Diagnostics, ProcessPoolFutureAndLockDeadlockIsReported) {
  const FutureDeadlock report = future_deadlock_report(wait_for_pool_task_while_holding);
  ASSERT_NE(report.text, "") << "no deadlock report";
  EXPECT_EQ(report.text.find(report.child + " waits for the future of a task that runs on " + report.child_thread),
            std::string::npos)
      << "the task runs in the worker process, not in the waiter's: " << report.text;
}

// Producers and consumers that block on each other all the time, and locks handed over under
// contention: busy, never stuck, never reported.
// (Putting while holding `shared` would deadlock once `out` is full and the next stage waits for
// `shared`: the first draft of this test did, and the watchdog reported it.)
void pipeline_stage(tandem::Queue<int> in, tandem::Queue<int> out, tandem::Lock shared, int items) {
  for (int i = 0; i < items; ++i) {
    const int item = in.get();
    { tandem::LockGuard guard(shared); }
    out.put(item + 1);
  }
}

TEST_P(DiagnosticsOnAgents, BusyPipelinesAreNeverReported) {
  tandem::Queue<int> first(tandem::QueueOptions{.maxsize = 2}), second(tandem::QueueOptions{.maxsize = 2}),
      third(tandem::QueueOptions{.maxsize = 2});
  tandem::Lock shared("shared");
  constexpr int kItems = 3000;
  TestAgent a(GetParam(), pipeline_stage, first, second, shared, kItems);
  TestAgent b(AgentKind::thread, pipeline_stage, second, third, shared, kItems);
  std::thread feeder([&] {
    for (int i = 0; i < kItems; ++i) first.put(i);
  });
  for (int i = 0; i < kItems; ++i) EXPECT_EQ(third.get(), i + 2);
  feeder.join();
  a.join();
  b.join();
  std::this_thread::sleep_for(200ms);
  EXPECT_TRUE(findings(Finding::deadlock).empty()) << findings(Finding::deadlock).front().text;
}

// Main hands a long and a short job to two workers and waits for results. The worker with the
// short job is soon waiting for more jobs, which only main puts, while main waits for results,
// which so far only that worker has put: the other worker, still busy, will put the next. Busy,
// not stuck: never reported.
void work_on_jobs(tandem::Queue<int> jobs, tandem::Queue<int> results) {
  for (;;) {
    const int job = jobs.get();
    if (job < 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(job));
    results.put(job);
  }
}

TEST_F(Diagnostics, AWorkerStillBusyKeepsTheOthersFromBeingReported) {
  tandem::Queue<int> jobs, results;
  TestAgent first(AgentKind::thread, work_on_jobs, jobs, results);
  TestAgent second(AgentKind::thread, work_on_jobs, jobs, results);
  jobs.put(1);
  EXPECT_EQ(results.get(), 1);
  jobs.put(1500);
  jobs.put(1);
  EXPECT_EQ(results.get(), 1);
  EXPECT_EQ(results.get(), 1500);
  jobs.put(-1);
  jobs.put(-1);
  first.join();
  second.join();
  EXPECT_TRUE(findings(Finding::deadlock).empty()) << findings(Finding::deadlock).front().text;
}

// A pool worker that waits for a future runs other tasks meanwhile: it is running, not blocked.
TEST_F(Diagnostics, APoolWorkerThatHelpsWhileItWaitsIsNotBlocked) {
  tandem::ThreadPool pool(2);
  auto outer = pool.submit([&pool] {
    auto slow = pool.submit([] { std::this_thread::sleep_for(800ms); });
    auto waiting = pool.submit([slow]() mutable { slow.get(); });
    waiting.get();
    slow.get();
  });
  outer.get();
  EXPECT_TRUE(findings(Finding::deadlock).empty()) << findings(Finding::deadlock).front().text;
}

// ---- starvation ---------------------------------------------------------------------------------

void hold_journal(tandem::Lock journal, tandem::Event holding, int milliseconds) {
  tandem::LockGuard guard(journal);
  holding.set();
  std::this_thread::sleep_for(std::chrono::milliseconds(milliseconds));
}

TEST_P(DiagnosticsOnAgents, ALongLockWaitIsReportedAsStarvation) {
  tandem::Lock journal("journal");
  tandem::Event holding;
  TestAgent holder(GetParam(), hold_journal, journal, holding, 1200);
  holding.wait();
  journal.lock();  // waits ~1.2 s, past the 0.3 s threshold
  journal.unlock();
  holder.join();
  const auto found = findings(Finding::starvation);
  ASSERT_EQ(found.size(), 1u) << "one long wait, one report";
  const std::string& text = found.front().text;
  const std::string waiter = "thread " + std::to_string(::gettid()) + " ";
  EXPECT_NE(text.find("starvation: " + waiter), std::string::npos) << text;
  EXPECT_NE(text.find("for lock 'journal' and still waits"), std::string::npos) << text;
  EXPECT_NE(text.find("held meanwhile by " + agent_text(holder)), std::string::npos) << text;
  EXPECT_NE(text.find(process_text(holder)), std::string::npos) << text;
  EXPECT_NE(text.find("has waited "), std::string::npos) << text;
}

TEST_F(Diagnostics, ShortLockWaitsAreNotStarvation) {
  tandem::Lock journal("journal");
  tandem::Event holding;
  TestAgent holder(AgentKind::thread, hold_journal, journal, holding, 50);
  holding.wait();
  journal.lock();
  journal.unlock();
  holder.join();
  std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(findings(Finding::starvation).empty());
}

// ---- stalled pools ------------------------------------------------------------------------------

TEST_F(Diagnostics, APoolWhoseTasksMakeNoProgressIsReportedAsStalled) {
  tandem::ThreadPool pool(2);
  std::atomic<bool> release{false};
  auto spin = [&release] {
    while (!release.load()) std::this_thread::yield();
  };
  auto a = pool.submit(spin);
  auto b = pool.submit(spin);
  const auto report = await_finding(Finding::stall, 5s);
  release = true;
  a.get();
  b.get();
  ASSERT_TRUE(report.has_value()) << "no stall report";
  EXPECT_NE(report->text.find("stall: a ThreadPool of 2 workers has finished no task for"), std::string::npos)
      << report->text;
  EXPECT_NE(report->text.find("all of them are busy"), std::string::npos) << report->text;
}

void spin_for_milliseconds(int milliseconds) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(milliseconds);
  while (std::chrono::steady_clock::now() < end) {
  }
}

TEST_F(Diagnostics, AProcessPoolWhoseTasksMakeNoProgressIsReportedAsStalled) {
  tandem::ProcessPool pool(2);
  auto a = pool.submit(spin_for_milliseconds, 1500);
  auto b = pool.submit(spin_for_milliseconds, 1500);
  auto c = pool.submit(spin_for_milliseconds, 1);
  const auto report = await_finding(Finding::stall, 5s);
  a.get();
  b.get();
  c.get();
  ASSERT_TRUE(report.has_value()) << "no stall report";
  EXPECT_NE(report->text.find("stall: a ProcessPool of 2 workers has finished no task for"), std::string::npos)
      << report->text;
  EXPECT_NE(report->text.find("(1 task queued, 0 finished so far)"), std::string::npos) << report->text;
}

TEST_F(Diagnostics, AProcessPoolThatFinishesTasksIsNotStalled) {
  tandem::ProcessPool pool(2);
  std::vector<tandem::Future<void>> done;
  for (int i = 0; i < 40; ++i) done.push_back(pool.submit(spin_for_milliseconds, 20));
  for (auto& future : done) future.get();
  EXPECT_TRUE(findings(Finding::stall).empty()) << findings(Finding::stall).front().text;
}

TEST_F(Diagnostics, APoolThatFinishesTasksIsNotStalled) {
  tandem::ThreadPool pool(2);
  for (int i = 0; i < 40; ++i) {
    pool.submit([] { std::this_thread::sleep_for(20ms); });
  }
  pool.shutdown();
  EXPECT_TRUE(findings(Finding::stall).empty()) << findings(Finding::stall).front().text;
}

// ---- abort mode ---------------------------------------------------------------------------------

// Runs `body` in a forked child that turns the diagnostics on in abort mode and sends its stderr
// to a file; returns the child's exit code and what it printed.
template <void (*Body)()>
std::pair<int, std::string> run_in_aborting_child() {
  char path[] = "/tmp/tandem-diagnostics-XXXXXX";
  const int fd = ::mkstemp(path);
  EXPECT_GE(fd, 0);
  ::close(fd);
  tandem::diagnostics::disable();
  tandem::Process child(
      tandem::ProcessOptions{.start_method = tandem::StartMethod::fork},
      [](std::string output) {
        const int out = ::open(output.c_str(), O_WRONLY | O_TRUNC);
        ::dup2(out, STDERR_FILENO);
        tandem::diagnostics::enable({.mode = tandem::diagnostics::Mode::abort, .watchdog_period = 50ms});
        Body();
        std::_Exit(0);
      },
      std::string(path));
  child.start();
  child.join();
  std::ifstream in(path);
  std::stringstream printed;
  printed << in.rdbuf();
  ::unlink(path);
  return {child.exitcode().value_or(0), printed.str()};
}

void two_threads_that_deadlock() {
  tandem::Lock left("left"), right("right");
  tandem::Event both_hold;
  std::atomic<int> holding{0};
  auto take = [&](tandem::Lock& first, tandem::Lock& second) {
    tandem::LockGuard a(first);
    if (++holding == 2) both_hold.set();
    both_hold.wait();
    tandem::LockGuard b(second);
  };
  // The order check would stop the second thread first: this plants the deadlock itself.
  std::thread one([&] { take(left, right); });
  std::thread two([&] { take(right, left); });
  one.join();
  two.join();
}

TEST(DiagnosticsAbort, AnInversionStopsTheProgramBeforeItHangs) {
  const auto [code, printed] = run_in_aborting_child<two_threads_that_deadlock>();
  EXPECT_EQ(code, -SIGABRT) << printed;
  EXPECT_NE(printed.find("tandem diagnostics: potential deadlock: lock order inversion between"), std::string::npos)
      << printed;
}

void deadlock_without_order_check() {
  // One order per agent and a queue between them: no lock-order cycle, a real deadlock.
  tandem::Lock ledger("ledger");
  tandem::Queue<int> jobs;
  tandem::Event holding;
  std::thread getter(hold_ledger_then_get<tandem::Lock>, ledger, jobs, holding);
  std::thread putter(put_then_take_ledger<tandem::Lock>, ledger, jobs, holding);
  getter.join();
  putter.join();
}

TEST(DiagnosticsAbort, ADeadlockStopsTheProgramWithTheReport) {
  const auto [code, printed] = run_in_aborting_child<deadlock_without_order_check>();
  EXPECT_EQ(code, -SIGABRT) << printed;
  EXPECT_NE(printed.find("tandem diagnostics: deadlock: 2 agents wait for each other"), std::string::npos) << printed;
}

// ---- the switch ---------------------------------------------------------------------------------

TEST(DiagnosticsSwitch, OffByDefaultAndAfterDisable) {
  EXPECT_EQ(tandem::diagnostics::mode(), tandem::diagnostics::Mode::off);
  tandem::diagnostics::enable(quick_options());
  EXPECT_EQ(tandem::diagnostics::mode(), tandem::diagnostics::Mode::report);
  tandem::diagnostics::disable();
  EXPECT_EQ(tandem::diagnostics::mode(), tandem::diagnostics::Mode::off);
  // Off, an inversion goes unrecorded.
  tandem::Lock a("a"), b("b");
  { tandem::LockGuard x(a); tandem::LockGuard y(b); }
  { tandem::LockGuard x(b); tandem::LockGuard y(a); }
  tandem::diagnostics::enable(quick_options());
  EXPECT_TRUE(tandem::diagnostics::reports().empty());
  tandem::diagnostics::disable();
}

// TANDEM_DEADLOCK turns the diagnostics on from tandem::init: this test program, run again with
// it set, checks the mode from inside (DiagnosticsEnvironment.ModeComesFromTheEnvironment).
TEST(DiagnosticsSwitch, TheEnvironmentVariableTurnsThemOn) {
  const std::string self = std::filesystem::read_symlink("/proc/self/exe");
  for (const char* mode : {"report", "abort"}) {
    const std::string command = std::string("TANDEM_DEADLOCK=") + mode + " TANDEM_EXPECTED_MODE=" + mode + " " + self +
                                " --gtest_filter=DiagnosticsEnvironment.ModeComesFromTheEnvironment >/dev/null 2>&1";
    EXPECT_EQ(std::system(command.c_str()), 0) << command;
  }
  const std::string bad = "TANDEM_DEADLOCK=loud " + self + " --gtest_filter=DiagnosticsSwitch.Nothing >/dev/null 2>&1";
  EXPECT_NE(std::system(bad.c_str()), 0) << "an unknown mode must stop the program";
}

TEST(DiagnosticsEnvironment, ModeComesFromTheEnvironment) {
  const char* expected = std::getenv("TANDEM_EXPECTED_MODE");
  if (expected == nullptr) GTEST_SKIP() << "run by TheEnvironmentVariableTurnsThemOn";
  const auto mode = tandem::diagnostics::mode();
  EXPECT_EQ(mode, std::string_view(expected) == "abort" ? tandem::diagnostics::Mode::abort
                                                         : tandem::diagnostics::Mode::report);
  // The fork server started too (it must start before the watchdog thread does).
  tandem::Process child(tandem::ProcessOptions{.start_method = tandem::StartMethod::forkserver}, [] {});
  child.start();
  child.join();
  EXPECT_EQ(child.exitcode(), 0);
}

TEST(DiagnosticsSwitch, BadOptionsAreRefused) {
  auto options = quick_options();
  options.watchdog_period = 0ms;
  EXPECT_THROW(tandem::diagnostics::enable(options), tandem::Error);
  EXPECT_EQ(tandem::diagnostics::mode(), tandem::diagnostics::Mode::off);
}

INSTANTIATE_TEST_SUITE_P(AllAgents, DiagnosticsOnAgents, ::testing::ValuesIn(kAllAgentKinds), agent_kind_name);

}  // namespace
