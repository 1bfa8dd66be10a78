// Section: livelock. Two agents each need two locks for a transaction, taken in opposite
// orders, and avoid a deadlock politely: take the first, prepare, try the second, and on failure
// release the first and retry. Retrying after the same fixed pause keeps the two in step, so
// they collide again and again while both keep busy; tandem::Backoff (a growing, randomized
// pause) pulls them apart. Completed transactions and failed attempts are counted.
//
// Then a total livelock, which the diagnostics catch: courteous agents on a pool announce their
// claim to the locks and defer to any other claimant. Insisting (keeping the claim while
// deferring), two of them defer to each other forever with all workers busy, and the pool's stall
// watch reports it; stepping aside (withdrawing the claim for a tandem::Backoff pause) cures it.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>
#include <thread>

#include "sections.hpp"
#include "tandem/backoff.hpp"
#include "tandem/diagnostics.hpp"
#include "tandem/lock.hpp"
#include "tandem/process_pool.hpp"
#include "tandem/process.hpp"
#include "tandem/shared_memory.hpp"
#include "tandem/thread.hpp"
#include "tandem/thread_pool.hpp"

namespace tandem::tour {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::nanoseconds;

enum class Retry : int { fixed_pause, backoff };

// The pace of one attempt. Both agents use the same, which is what keeps polite ones in step.
struct Pace {
  std::int64_t prepare_ns;  // holding the first lock before trying the second
  std::int64_t work_ns;     // the transaction itself, holding both
  std::int64_t pause_ns;    // the polite fixed pause after a failure
};

std::int64_t now_ns() { return Clock::now().time_since_epoch().count(); }

struct Shared {
  std::atomic<int> ready{0};
  std::atomic<std::int64_t> start_ns{0};
  // Counted under both locks with a separate load and store, like the race section's counter:
  // if the locks lost mutual exclusion it would fall short of the agents' own counts.
  std::atomic<std::int64_t> transactions{0};
  std::int64_t completed[2] = {};
  std::int64_t failed[2] = {};
};

void transact(SharedMemory memory, Lock first, Lock second, int agent, Retry retry, Pace pace,
              std::int64_t run_ns) {
  auto& shared = *std::launder(reinterpret_cast<Shared*>(memory.data()));
  shared.ready.fetch_add(1);
  while (shared.start_ns.load() == 0) std::this_thread::yield();
  const std::int64_t end_ns = shared.start_ns.load() + run_ns;
  Backoff backoff;
  std::int64_t completed = 0, failed = 0;
  while (now_ns() < end_ns) {
    first.lock();
    busy_for(nanoseconds(pace.prepare_ns));
    if (second.try_lock()) {
      shared.transactions.store(shared.transactions.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      busy_for(nanoseconds(pace.work_ns));
      second.unlock();
      first.unlock();
      ++completed;
      backoff.reset();
      continue;
    }
    first.unlock();
    ++failed;
    if (retry == Retry::fixed_pause) {
      busy_for(nanoseconds(pace.pause_ns));
    } else {
      backoff.pause();
    }
  }
  shared.completed[agent] = completed;
  shared.failed[agent] = failed;
}

struct Outcome {
  std::int64_t completed_by[2] = {};
  std::int64_t completed = 0, failed = 0;
};

template <class Agent, class... AgentOptions>
Outcome run_pair(Retry retry, Pace pace, nanoseconds run, AgentOptions... options) {
  SharedMemory memory(sizeof(Shared));
  auto& shared = *new (memory.data()) Shared;
  Lock left("left"), right("right");
  // Opposite orders: agent 0 takes left then right, agent 1 right then left.
  Agent a(options..., &transact, memory, left, right, 0, retry, pace, run.count());
  Agent b(options..., &transact, memory, right, left, 1, retry, pace, run.count());
  a.start();
  b.start();
  while (shared.ready.load() < 2) std::this_thread::sleep_for(std::chrono::microseconds(100));
  shared.start_ns.store(now_ns());
  a.join();
  b.join();
  for (const Agent* agent : {&a, &b}) {
    if (agent->exception()) std::rethrow_exception(agent->exception());
  }
  const Outcome outcome{{shared.completed[0], shared.completed[1]},
                        shared.completed[0] + shared.completed[1],
                        shared.failed[0] + shared.failed[1]};
  if (shared.transactions.load() != outcome.completed) {
    throw std::runtime_error("two transactions held both locks at once");
  }
  return outcome;
}

double success_ratio(const Outcome& o) {
  const std::int64_t attempts = o.completed + o.failed;
  return attempts == 0 ? 0 : static_cast<double>(o.completed) / static_cast<double>(attempts);
}

// ---- courteous agents on a pool ----------------------------------------------------------------

enum class Courtesy : int { insist, step_aside_fixed, step_aside };

struct Claims {
  std::atomic<int> started{0};
  std::atomic<int> claimants{0};
  std::atomic<int> stop{0};
  std::atomic<std::int64_t> deferrals{0};
};
// Claims is shared by processes through its memory: its atomics must not hide a lock.
static_assert(std::atomic<int>::is_always_lock_free && std::atomic<std::int64_t>::is_always_lock_free);

constexpr std::int64_t kCourteousWorkNs = 2'000;
constexpr std::int64_t kCourteousPauseNs = 500;

// One pool task: `batch` transactions over two locks. A courteous agent claims the locks, takes
// the first and goes on only if nobody else claims them and the second is free; otherwise it
// releases the first and defers: "after you". Insisting, it keeps its claim while it defers, and
// two such agents each wait for the other to go first, forever. Stepping aside, it withdraws its
// claim for a Backoff pause and then claims again.
// The first two tasks to start (one per worker) claim at once and wait, up to two seconds, for
// each other's claim: the agents meet from their first attempt, where otherwise one could run all
// its tasks alone while the other's worker is not scheduled.
std::int64_t courteous_batch(SharedMemory memory, Lock first, Lock second, Courtesy courtesy, int batch) {
  auto& claims = *std::launder(reinterpret_cast<Claims*>(memory.data()));
  bool claiming = false;
  if (claims.started.fetch_add(1) < 2) {
    claims.claimants.fetch_add(1);
    claiming = true;
    const auto meet_by = Clock::now() + std::chrono::seconds(2);
    while (claims.claimants.load() < 2 && Clock::now() < meet_by) std::this_thread::yield();
  }
  Backoff backoff;
  std::int64_t completed = 0;
  while (completed < batch && claims.stop.load() == 0) {
    if (!claiming) {
      claims.claimants.fetch_add(1);
      claiming = true;
    }
    first.lock();
    if (claims.claimants.load() == 1 && second.try_lock()) {
      busy_for(nanoseconds(kCourteousWorkNs));
      second.unlock();
      first.unlock();
      claims.claimants.fetch_sub(1);
      claiming = false;
      ++completed;
      backoff.reset();
      continue;
    }
    first.unlock();
    claims.deferrals.fetch_add(1);
    if (courtesy == Courtesy::insist) {
      std::this_thread::yield();
      continue;
    }
    claims.claimants.fetch_sub(1);
    claiming = false;
    if (courtesy == Courtesy::step_aside_fixed) {
      busy_for(nanoseconds(kCourteousPauseNs));
    } else {
      backoff.pause();
    }
  }
  if (claiming) claims.claimants.fetch_sub(1);
  return completed;
}

std::string courtesy_text(Courtesy courtesy) {
  switch (courtesy) {
    case Courtesy::insist: return "insisting";
    case Courtesy::step_aside_fixed: return "stepping aside, fixed " + fixed(kCourteousPauseNs / 1e3, 1) + " us";
    case Courtesy::step_aside: return "stepping aside, tandem::Backoff";
  }
  return "";
}

struct PoolRun {
  std::int64_t transactions = 0;
  std::int64_t deferrals = 0;
  std::int64_t tasks = 0;       // submitted
  std::int64_t tasks_done = 0;  // that completed their whole batch
  double seconds = 0;           // from the first submit to the last result
  std::optional<diagnostics::Report> stall;
  double stall_after_seconds = 0;
};

std::optional<diagnostics::Report> stall_report() {
  for (auto& report : diagnostics::reports()) {
    if (report.finding == diagnostics::Finding::stall) return std::move(report);
  }
  return std::nullopt;
}

// Courteous agents on `pool`: waves of `wave` tasks (alternating the lock order) until `duration`
// has passed, so that a cured run lasts long enough for a stall to show if it had one. Insisting
// agents never finish their first wave: once the stall is reported (or after `give_up`) the tour
// stops them.
template <class Pool>
PoolRun run_courteous(Pool& pool, Courtesy courtesy, int wave, int batch, std::chrono::milliseconds duration,
                      std::chrono::milliseconds give_up) {
  SharedMemory memory(sizeof(Claims));
  auto& claims = *new (memory.data()) Claims;
  Lock left("left"), right("right");
  const auto started = Clock::now();
  PoolRun run;
  do {
    std::vector<decltype(pool.submit(&courteous_batch, memory, left, right, courtesy, batch))> results;
    for (int task = 0; task < wave; ++task) {
      results.push_back(task % 2 == 0 ? pool.submit(&courteous_batch, memory, left, right, courtesy, batch)
                                      : pool.submit(&courteous_batch, memory, right, left, courtesy, batch));
    }
    if (courtesy == Courtesy::insist) {
      const auto all_done = [&results] {
        for (const auto& result : results) {
          if (!result.done()) return false;
        }
        return true;
      };
      while (!(run.stall = stall_report()) && !all_done() && Clock::now() - started < give_up) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      run.stall_after_seconds = std::chrono::duration<double>(Clock::now() - started).count();
      claims.stop.store(1);
    }
    for (auto& result : results) {
      const std::int64_t completed = result.get();
      run.transactions += completed;
      run.tasks_done += completed == batch ? 1 : 0;
    }
    run.tasks += wave;
  } while (courtesy != Courtesy::insist && Clock::now() - started < duration);
  run.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  run.deferrals = claims.deferrals.load();
  if (courtesy != Courtesy::insist) run.stall = stall_report();
  return run;
}

// The second half of the section: courteous agents on a ThreadPool and on a ProcessPool,
// insisting (a total livelock, reported as a stall) and stepping aside with Backoff (cured).
void add_pool_livelock(Section& section, const Options& options, Progress& progress) {
  const diagnostics::Options watch{
      .mode = diagnostics::Mode::report, .stall_threshold = std::chrono::milliseconds(300), .print = false};
  const int wave = options.quick ? 10 : 40;
  const int batch = 25;
  // Longer than the stall threshold plus two looks: a cured run that stalled would be reported.
  const std::chrono::milliseconds duration(options.quick ? 700 : 1000);
  const std::chrono::milliseconds give_up(5000);
  section.setup +=
      " Then courteous agents on pools of 2 workers, under tandem::diagnostics with a " +
      std::to_string(watch.stall_threshold.count()) + " ms stall threshold: waves of " + std::to_string(wave) +
      " tasks of " + std::to_string(batch) + " transactions over two Locks (alternate tasks in opposite orders), " +
      fixed(kCourteousWorkNs / 1e3, 0) +
      " us each. A courteous agent claims the locks and defers to any other claimant: it goes on only if it is "
      "the only one and try_lock of the second succeeds, else it releases the first. Insisting: it keeps its "
      "claim and yields; one wave, stopped once the stall is reported (or after " +
      fixed(give_up.count() / 1e3, 0) + " s). Stepping aside: it withdraws its claim for a pause, a fixed " +
      fixed(kCourteousPauseNs / 1e3, 1) + " us (busy) or tandem::Backoff::pause(); waves for " +
      fixed(duration.count() / 1e3, 1) + " s.";
  Table table{{"pool", "courtesy", "transactions", "tasks finished", "deferrals", "time", "stall reported"}, {}};
  std::optional<diagnostics::Report> shown_report;
  for (const bool processes : {false, true}) {
    const char* pool_name = processes ? "ProcessPool" : "ThreadPool";
    PoolRun runs[3];
    for (const Courtesy courtesy : {Courtesy::insist, Courtesy::step_aside_fixed, Courtesy::step_aside}) {
      const bool insist = courtesy == Courtesy::insist;
      progress.step(std::string(pool_name) + ", " + courtesy_text(courtesy));
      const DiagnosticsOn on(watch);
      PoolRun run;
      if (processes) {
        ProcessPool pool(ProcessPoolOptions{.workers = 2, .start_method = StartMethod::forkserver});
        run = run_courteous(pool, courtesy, wave, batch, duration, give_up);
      } else {
        ThreadPool pool(2);
        run = run_courteous(pool, courtesy, wave, batch, duration, give_up);
      }
      if (insist && run.stall && !shown_report) shown_report = run.stall;
      table.rows.push_back(
          {pool_name, courtesy_text(courtesy), std::to_string(run.transactions),
           std::to_string(run.tasks_done) + " of " + std::to_string(run.tasks), std::to_string(run.deferrals),
           fixed(run.seconds * 1e3, 0) + " ms",
           run.stall ? "yes" + (insist ? ", " + fixed(run.stall_after_seconds * 1e3, 0) + " ms after the start"
                                       : std::string(" (unexpected)"))
                     : "no"});
      runs[static_cast<int>(courtesy)] = std::move(run);
    }
    const PoolRun& insisting = runs[static_cast<int>(Courtesy::insist)];
    const PoolRun& fixed_pause = runs[static_cast<int>(Courtesy::step_aside_fixed)];
    const PoolRun& backoff = runs[static_cast<int>(Courtesy::step_aside)];
    if (!insisting.stall) {
      throw std::runtime_error(std::string("the insisting agents on a ") + pool_name +
                               (insisting.tasks_done == insisting.tasks
                                    ? " finished every task: they never ran at the same time"
                                    : " livelocked but no stall was reported within " +
                                          fixed(give_up.count() / 1e3, 0) + " s"));
    }
    for (const PoolRun* cured : {&fixed_pause, &backoff}) {
      if (cured->tasks_done != cured->tasks) {
        throw std::runtime_error(std::string("agents stepping aside on a ") + pool_name + " finished only " +
                                 std::to_string(cured->tasks_done) + " of " + std::to_string(cured->tasks) +
                                 " tasks");
      }
    }
    std::string text = std::string("On a ") + pool_name + ", insisting agents completed " +
                       counted(static_cast<std::size_t>(insisting.transactions), "transaction") + " (" +
                       std::to_string(insisting.tasks_done) + " of " + std::to_string(insisting.tasks) +
                       " tasks), then deferred to each other " + std::to_string(insisting.deferrals) +
                       " times with both workers busy: a total livelock, reported as a stall " +
                       fixed(insisting.stall_after_seconds * 1e3, 0) + " ms after the first submit. ";
    text += "Stepping aside ends it: in " + fixed(duration.count() / 1e3, 1) + " s, " +
            std::to_string(fixed_pause.transactions) + " transactions with a fixed pause (" +
            fixed(static_cast<double>(fixed_pause.deferrals) / static_cast<double>(fixed_pause.transactions), 2) +
            " deferrals each) and " + std::to_string(backoff.transactions) + " with tandem::Backoff (" +
            fixed(static_cast<double>(backoff.deferrals) / static_cast<double>(backoff.transactions), 2) +
            " deferrals each)";
    if (backoff.transactions > fixed_pause.transactions && fixed_pause.transactions > 0) {
      text += ". Withdrawing the claim ends the total livelock; with a fixed pause the agents still step back in "
              "together and collide (a partial livelock), and Backoff's growing random pause gave " +
              times(static_cast<double>(backoff.transactions) / static_cast<double>(fixed_pause.transactions)) +
              " the transactions";
    } else {
      text += ". Withdrawing the claim ends the livelock; here Backoff's longer pauses did not pay for themselves";
    }
    text += fixed_pause.stall || backoff.stall
                ? ". A stall was reported on agents that stepped aside: see the table."
                : ". No stall was reported on them, in runs longer than the threshold.";
    section.takeaways.push_back(text);
  }
  section.tables.push_back(std::move(table));
  if (shown_report) section.excerpts.push_back({"The stall report on insisting agents", shown_report->text});
}

}  // namespace

Section livelock(const Options& options, Progress& progress) {
  progress.plan(10);
  const nanoseconds run = options.quick ? std::chrono::milliseconds(200) : std::chrono::milliseconds(1000);
  const Pace pace{.prepare_ns = 10'000, .work_ns = 2'000, .pause_ns = 500};
  const double seconds = std::chrono::duration<double>(run).count();
  Section section;
  section.title = "Livelock: polite retries vs randomized backoff, and a livelocked pool reported";
  section.setup =
      "Two agents each run transactions that need two tandem::Locks, taken in opposite orders, for " +
      fixed(seconds, 1) + " s: take the first, prepare for " + fixed(pace.prepare_ns / 1e3, 0) +
      " us (busy), try_lock the second; on success work " + fixed(pace.work_ns / 1e3, 0) +
      " us and release both, on failure release the first and retry. Polite: retry after a fixed " +
      fixed(pace.pause_ns / 1e3, 1) +
      " us (busy), the same for both. Backoff: tandem::Backoff::pause() after each failure, reset() after each "
      "success. Two threads, then two processes (forkserver).";
  Table table{{"retry", "agents", "transactions", "by each agent", "failed attempts", "success ratio"}, {}};
  struct Variant {
    Retry retry;
    const char* name;
  };
  const Variant variants[] = {{Retry::fixed_pause, "polite, fixed pause"}, {Retry::backoff, "tandem::Backoff"}};
  const ProcessOptions forkserver{.start_method = StartMethod::forkserver};
  Outcome outcomes[2][2];  // [processes][retry]
  for (const bool processes : {false, true}) {
    for (const auto& variant : variants) {
      progress.step(std::string(variant.name) + (processes ? ", two processes" : ", two threads"));
      const Outcome outcome = processes ? run_pair<Process>(variant.retry, pace, run, forkserver)
                                        : run_pair<Thread>(variant.retry, pace, run);
      outcomes[processes][static_cast<int>(variant.retry)] = outcome;
      table.rows.push_back({variant.name, processes ? "2 processes" : "2 threads", std::to_string(outcome.completed),
                            std::to_string(outcome.completed_by[0]) + " / " + std::to_string(outcome.completed_by[1]),
                            std::to_string(outcome.failed), percent(success_ratio(outcome))});
    }
  }
  section.tables.push_back(std::move(table));
  for (const bool processes : {false, true}) {
    const Outcome& polite = outcomes[processes][static_cast<int>(Retry::fixed_pause)];
    const Outcome& backoff = outcomes[processes][static_cast<int>(Retry::backoff)];
    std::string text = std::string("With ") + (processes ? "processes" : "threads") +
                       ", polite retries at a fixed pause completed " + std::to_string(polite.completed) +
                       " transactions in " + std::to_string(polite.completed + polite.failed) + " attempts (" +
                       percent(success_ratio(polite)) + ")";
    if (success_ratio(polite) < 0.5) {
      text += ": most attempts collided and were undone while both agents kept busy, a livelock";
    }
    text += ". With tandem::Backoff: " + std::to_string(backoff.completed) + " in " +
            std::to_string(backoff.completed + backoff.failed) + " (" + percent(success_ratio(backoff)) + ")";
    if (polite.completed > 0) {
      text += ", " + times(static_cast<double>(backoff.completed) / static_cast<double>(polite.completed)) +
              " the transactions";
    }
    const std::int64_t fewer = std::min(backoff.completed_by[0], backoff.completed_by[1]);
    if (backoff.completed > 0 && fewer < backoff.completed / 5) {
      text += ", but unevenly: one agent completed " + (fewer == 0 ? "none" : "only " + std::to_string(fewer)) +
              " of them. A winner's backoff starts over short after each success while the loser's keeps "
              "growing, so one agent can capture the locks";
    }
    section.takeaways.push_back(text + ".");
  }
  add_pool_livelock(section, options, progress);
  return section;
}

}  // namespace tandem::tour
