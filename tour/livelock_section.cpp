// Section: livelock. Two agents each need two locks for a transaction, taken in opposite
// orders, and avoid a deadlock politely: take the first, prepare, try the second, and on failure
// release the first and retry. Retrying after the same fixed pause keeps the two in step, so
// they collide again and again while both keep busy; tandem::Backoff (a growing, randomized
// pause) pulls them apart. Completed transactions and failed attempts are counted.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>

#include "sections.hpp"
#include "tandem/backoff.hpp"
#include "tandem/lock.hpp"
#include "tandem/process.hpp"
#include "tandem/shared_memory.hpp"
#include "tandem/thread.hpp"

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

}  // namespace

Section livelock(const Options& options, Progress& progress) {
  progress.plan(4);
  const nanoseconds run = options.quick ? std::chrono::milliseconds(200) : std::chrono::milliseconds(1000);
  const Pace pace{.prepare_ns = 10'000, .work_ns = 2'000, .pause_ns = 500};
  const double seconds = std::chrono::duration<double>(run).count();
  Section section;
  section.title = "Livelock: polite retries vs randomized backoff";
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
  return section;
}

}  // namespace tandem::tour
