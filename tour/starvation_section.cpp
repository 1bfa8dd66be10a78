// Section: starvation. Three agents (two threads and a process) take one lock over and over,
// each holding it for a few microseconds of work and asking for it again at once. A tandem::Lock
// goes to whoever grabs it first, often the agent that just released it, which is still running
// while the others sleep; a tandem::FairLock is handed over in arrival order. How long each
// acquisition waited is measured, and so is the throughput, which is what fairness costs.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "sections.hpp"
#include "tandem/fair_lock.hpp"
#include "tandem/lock.hpp"
#include "tandem/process.hpp"
#include "tandem/shared_memory.hpp"
#include "tandem/thread.hpp"

namespace tandem::tour {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::nanoseconds;

constexpr int kAgents = 3;  // the last one a process, the others threads
const char* const kAgentNames[kAgents] = {"thread 1", "thread 2", "process"};

std::int64_t now_ns() { return Clock::now().time_since_epoch().count(); }

// What the agents share. Each agent writes only its own slots of the arrays.
struct Shared {
  std::atomic<int> ready{0};
  std::atomic<std::int64_t> start_ns{0};  // set once every agent is ready: all start together
  std::atomic<int> asking{0};             // agents inside lock() right now
  std::atomic<int> last_holder{-1};
  std::atomic<int> inside{0};    // agents in the critical section, never more than one
  std::atomic<int> overlaps{0};  // times an agent found another one inside
  std::int64_t acquisitions[kAgents] = {};
  // Acquisitions by the agent that held the lock last, while another agent was asking for it.
  std::int64_t retakes[kAgents] = {};
  std::int64_t finished_ns[kAgents] = {};  // when the agent released the lock for the last time
};

// Takes `lock` again and again until `run_ns` have passed, holding it for `hold_ns` each time, and
// writes how long each acquisition waited (ns) into its part of `waits`.
template <class AnyLock>
void contend(SharedMemory memory, SharedMemory waits, AnyLock lock, int agent, std::int64_t run_ns,
             std::int64_t hold_ns) {
  auto& shared = *std::launder(reinterpret_cast<Shared*>(memory.data()));
  const std::size_t capacity = waits.size() / sizeof(std::uint32_t) / kAgents;
  auto* my_waits = reinterpret_cast<std::uint32_t*>(waits.data()) + static_cast<std::size_t>(agent) * capacity;
  shared.ready.fetch_add(1);
  while (shared.start_ns.load() == 0) std::this_thread::yield();
  const std::int64_t end_ns = shared.start_ns.load() + run_ns;
  std::size_t count = 0;
  std::int64_t retakes = 0;
  std::int64_t got_ns = 0;
  while (got_ns < end_ns && count < capacity) {
    shared.asking.fetch_add(1);
    const std::int64_t asked_ns = now_ns();
    lock.lock();
    got_ns = now_ns();
    shared.asking.fetch_sub(1);
    if (shared.inside.fetch_add(1) != 0) shared.overlaps.fetch_add(1);
    if (shared.last_holder.exchange(agent) == agent && shared.asking.load() > 0) ++retakes;
    busy_for(nanoseconds(hold_ns));
    shared.inside.fetch_sub(1);
    lock.unlock();
    my_waits[count++] = static_cast<std::uint32_t>(std::min<std::int64_t>(got_ns - asked_ns, UINT32_MAX));
  }
  shared.acquisitions[agent] = static_cast<std::int64_t>(count);
  shared.retakes[agent] = retakes;
  shared.finished_ns[agent] = now_ns();
}

struct AgentResult {
  std::int64_t acquisitions = 0;
  std::int64_t retakes = 0;
  std::vector<std::uint32_t> waits;  // ns, one per acquisition, sorted
};

struct Contention {
  AgentResult agents[kAgents];
  AgentResult all;
  double seconds = 0;  // from the common start to the last release
};

template <class AnyLock>
Contention contend_for(AnyLock lock, nanoseconds run, nanoseconds hold) {
  SharedMemory memory(sizeof(Shared));
  auto& shared = *new (memory.data()) Shared;
  // Acquisitions hold the lock for `hold` each, one at a time, so room for twice the run's worth
  // is never used up: an agent would stop early rather than drop a wait.
  const auto capacity = static_cast<std::size_t>(2 * run / hold);
  SharedMemory waits(capacity * kAgents * sizeof(std::uint32_t));
  std::vector<Thread> threads;
  for (int agent = 0; agent + 1 < kAgents; ++agent) {
    threads.emplace_back(&contend<AnyLock>, memory, waits, lock, agent, run.count(), hold.count());
  }
  Process process(ProcessOptions{.start_method = StartMethod::forkserver}, &contend<AnyLock>, memory, waits, lock,
                  kAgents - 1, run.count(), hold.count());
  for (auto& thread : threads) thread.start();
  process.start();
  while (shared.ready.load() < kAgents) std::this_thread::sleep_for(std::chrono::microseconds(100));
  const std::int64_t start_ns = now_ns();
  shared.start_ns.store(start_ns);
  for (auto& thread : threads) thread.join();
  process.join();
  for (const auto& thread : threads) {
    if (thread.exception()) std::rethrow_exception(thread.exception());
  }
  if (process.exception()) std::rethrow_exception(process.exception());
  if (shared.overlaps.load() != 0) throw std::runtime_error("two agents held one lock at once");

  Contention result;
  std::int64_t last_ns = start_ns;
  const auto* all_waits = reinterpret_cast<const std::uint32_t*>(waits.data());
  for (int agent = 0; agent < kAgents; ++agent) {
    AgentResult& tally = result.agents[agent];
    tally.acquisitions = shared.acquisitions[agent];
    tally.retakes = shared.retakes[agent];
    const auto* first = all_waits + static_cast<std::size_t>(agent) * capacity;
    tally.waits.assign(first, first + tally.acquisitions);
    std::sort(tally.waits.begin(), tally.waits.end());
    result.all.acquisitions += tally.acquisitions;
    result.all.retakes += tally.retakes;
    result.all.waits.insert(result.all.waits.end(), tally.waits.begin(), tally.waits.end());
    last_ns = std::max(last_ns, shared.finished_ns[agent]);
  }
  std::sort(result.all.waits.begin(), result.all.waits.end());
  result.seconds = static_cast<double>(last_ns - start_ns) / 1e9;
  return result;
}

// The wait below which a fraction `q` of the sorted waits lie.
std::uint32_t percentile(const std::vector<std::uint32_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  const auto index = static_cast<std::size_t>(q * static_cast<double>(sorted.size() - 1));
  return sorted[index];
}

// Waits span from tens of nanoseconds to milliseconds: each in the unit that reads best.
std::string wait_text(std::uint32_t ns) {
  if (ns < 10'000) return fixed(ns / 1e3, 2) + " us";
  if (ns < 1'000'000) return fixed(ns / 1e3, 0) + " us";
  return fixed(ns / 1e6, 1) + " ms";
}

constexpr std::uint32_t kLongWaitNs = 1'000'000;

std::int64_t long_waits(const AgentResult& tally) {
  return tally.waits.end() - std::upper_bound(tally.waits.begin(), tally.waits.end(), kLongWaitNs);
}

double share(std::int64_t part, std::int64_t whole) {
  return whole == 0 ? 0 : static_cast<double>(part) / static_cast<double>(whole);
}

std::vector<std::string> row(const std::string& lock, const std::string& agent, const AgentResult& tally,
                             double seconds) {
  return {lock,
          agent,
          std::to_string(tally.acquisitions),
          fixed(static_cast<double>(tally.acquisitions) / seconds, 0),
          percent(share(tally.retakes, tally.acquisitions)),
          wait_text(percentile(tally.waits, 0.5)),
          wait_text(percentile(tally.waits, 0.99)),
          wait_text(percentile(tally.waits, 1.0)),
          std::to_string(long_waits(tally))};
}

struct Served {
  std::int64_t most = 0, least = 0;
  const char* least_agent = "";
};

Served served(const Contention& contention) {
  Served s{contention.agents[0].acquisitions, contention.agents[0].acquisitions, kAgentNames[0]};
  for (int agent = 1; agent < kAgents; ++agent) {
    const std::int64_t n = contention.agents[agent].acquisitions;
    s.most = std::max(s.most, n);
    if (n < s.least) {
      s.least = n;
      s.least_agent = kAgentNames[agent];
    }
  }
  return s;
}

std::string spread_text(const Served& s) {
  if (s.least == 0) return "the least served agent got none";
  return "the most served agent got " + times(static_cast<double>(s.most) / static_cast<double>(s.least)) +
         " the acquisitions of the least served";
}

// Greedy agents take the lock over and over for up to 600 ms, while a waiter asks for it once.
// With the diagnostics on (a 10 ms starvation threshold, looked at every 2 ms), returns how long the waiter waited
// and the starvation report, if the watchdog made one.
struct Detection {
  double waited_seconds = 0;
  std::string report;
};

template <class AnyLock>
Detection watch_a_greedy_agent(AnyLock lock) {
  const DiagnosticsOn on({.mode = diagnostics::Mode::report,
                          .watchdog_period = std::chrono::milliseconds(2),
                          .starvation_threshold = std::chrono::milliseconds(10),
                          .print = false});
  std::atomic<bool> holding{false};
  const auto end = Clock::now() + std::chrono::milliseconds(600);
  auto greedy = [&] {
    while (Clock::now() < end) {
      LockGuard guard(lock);
      holding.store(true);
      busy_for(std::chrono::microseconds(20));
    }
  };
  // Two of them, one per core: the lock passes between running threads while the waiter sleeps.
  std::thread first(greedy), second(greedy);
  while (!holding.load()) std::this_thread::yield();
  const auto asked = Clock::now();
  { LockGuard guard(lock); }
  Detection detection;
  detection.waited_seconds = std::chrono::duration<double>(Clock::now() - asked).count();
  first.join();
  second.join();
  for (const auto& report : diagnostics::reports()) {
    if (report.finding == diagnostics::Finding::starvation) detection.report = report.text;
  }
  return detection;
}

}  // namespace

Section starvation(const Options& options, Progress& progress) {
  progress.plan(3);
  const nanoseconds run = options.quick ? std::chrono::milliseconds(200) : std::chrono::milliseconds(1500);
  const nanoseconds hold = std::chrono::microseconds(2);
  Section section;
  section.title = "Starvation: an unfair lock vs a fair one";
  section.setup = "Two threads and a process (forkserver) take one lock over and over for " +
                  fixed(std::chrono::duration<double>(run).count(), 1) + " s: each holds it for " +
                  std::to_string(hold.count() / 1000) +
                  " us of busy work, releases it and asks again at once. Per acquisition, the time from asking to "
                  "holding is its wait. First a tandem::Lock, then a tandem::FairLock (first come, first served). "
                  "Retakes: the share of acquisitions by the agent that had just released the lock while another "
                  "agent was already asking for it.";
  Table table{
      {"lock", "agent", "acquisitions", "per second", "retakes", "wait p50", "wait p99", "wait max", "waits > 1 ms"},
      {}};

  progress.step("tandem::Lock, two threads and a process");
  const Contention unfair = contend_for(Lock("contended"), run, hold);
  progress.step("tandem::FairLock, two threads and a process");
  const Contention fair = contend_for(FairLock("contended"), run, hold);

  for (const auto& [name, contention] : {std::pair{"tandem::Lock", &unfair}, std::pair{"tandem::FairLock", &fair}}) {
    for (int agent = 0; agent < kAgents; ++agent) {
      table.rows.push_back(row(name, kAgentNames[agent], contention->agents[agent], contention->seconds));
    }
    table.rows.push_back(row(name, "all", contention->all, contention->seconds));
  }
  section.tables.push_back(std::move(table));

  const double unfair_retakes = share(unfair.all.retakes, unfair.all.acquisitions);
  const double fair_retakes = share(fair.all.retakes, fair.all.acquisitions);
  std::string barging =
      "Under tandem::Lock " + percent(unfair_retakes) +
      " of acquisitions went back to the agent that had just released the lock while another one waited; " +
      std::to_string(long_waits(unfair.all)) + " waits lasted over 1 ms, the longest " +
      wait_text(percentile(unfair.all.waits, 1.0)) + ". Under tandem::FairLock: " + percent(fair_retakes) +
      (fair_retakes >= 0.005 ? " (the others had asked but not yet queued), " : ", ") +
      std::to_string(long_waits(fair.all)) + " waits over 1 ms, the longest " +
      wait_text(percentile(fair.all.waits, 1.0)) + ".";
  if (long_waits(unfair.all) <= long_waits(fair.all)) {
    barging += " On this run Lock had no more waits over 1 ms than FairLock: it starved nobody.";
  }
  section.takeaways.push_back(barging);
  const Served unfair_served = served(unfair), fair_served = served(fair);
  section.takeaways.push_back("Under tandem::Lock " + spread_text(unfair_served) + " (" + unfair_served.least_agent +
                              "); under tandem::FairLock " + spread_text(fair_served) + ".");
  const double unfair_rate = static_cast<double>(unfair.all.acquisitions) / unfair.seconds;
  const double fair_rate = static_cast<double>(fair.all.acquisitions) / fair.seconds;
  std::string cost = "Acquisitions per second: " + fixed(fair_rate, 0) + " under FairLock, " +
                     fixed(unfair_rate, 0) + " under Lock (" + times(fair_rate / unfair_rate) + ")";
  if (fair_rate < unfair_rate) {
    cost += ", the price of fairness: each handover waits for the next agent in line to wake up, where a Lock "
            "lets the agent that is running take it again";
  }
  section.takeaways.push_back(cost + ". Mutual exclusion held under both: no agent ever found another inside.");

  progress.step("the starvation report: two greedy threads and a waiter, Lock and FairLock");
  const Detection unfair_watch = watch_a_greedy_agent(Lock("journal"));
  const Detection fair_watch = watch_a_greedy_agent(FairLock("journal"));
  section.tables.push_back(Table{{"lock", "the waiter waited", "starvation reported"},
                                 {{"tandem::Lock", wait_text(static_cast<std::uint32_t>(unfair_watch.waited_seconds * 1e9)),
                                   unfair_watch.report.empty() ? "no" : "yes"},
                                  {"tandem::FairLock", wait_text(static_cast<std::uint32_t>(fair_watch.waited_seconds * 1e9)),
                                   fair_watch.report.empty() ? "no" : "yes"}}});
  if (!unfair_watch.report.empty()) section.excerpts.push_back({"The starvation report under tandem::Lock", unfair_watch.report});
  section.takeaways.push_back(
      "Detected: with the diagnostics on (starvation threshold 10 ms), two threads that release a lock and take "
      "it again at once for 600 ms kept a waiter out for " + wait_text(static_cast<std::uint32_t>(unfair_watch.waited_seconds * 1e9)) +
      " under tandem::Lock" +
      (unfair_watch.report.empty() ? ", and no agent waited past the threshold"
                                   : "; the watchdog reported an agent that waited past the threshold") +
      "; under tandem::FairLock the waiter got the lock after " +
      wait_text(static_cast<std::uint32_t>(fair_watch.waited_seconds * 1e9)) +
      (fair_watch.report.empty() ? ", and nobody was reported." : ", and the watchdog reported a wait there too."));
  return section;
}

}  // namespace tandem::tour
