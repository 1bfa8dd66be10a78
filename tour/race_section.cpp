// Section: the race condition. Two agents add to one shared counter. Read, add one, write back,
// without a lock: increments that overlap overwrite each other and updates are lost, with
// threads and with processes alike. With a tandem::Lock, a Synchronized<long>, or an atomic
// add, the count is exact; what each costs per increment is measured.
#include <atomic>
#include <chrono>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "sections.hpp"
#include "tandem/lock.hpp"
#include "tandem/process.hpp"
#include "tandem/shared_memory.hpp"
#include "tandem/synchronized.hpp"
#include "tandem/thread.hpp"

namespace tandem::tour {
namespace {

enum class Guard : int { none, lock, synchronized, atomic };

// What the agents share: the counter (an atomic, so that even the unguarded variant is a
// well-defined program: it reads and writes with two separate operations, which is the race),
// a start flag so both agents run at once, and the guards.
struct Shared {
  std::atomic<long> counter{0};
  std::atomic<int> ready{0};
};

void add(SharedMemory memory, Lock lock, Synchronized<long> synchronized, Guard guard, long times) {
  auto& shared = *std::launder(reinterpret_cast<Shared*>(memory.data()));
  shared.ready.fetch_add(1);
  while (shared.ready.load() < 2) {
  }
  for (long i = 0; i < times; ++i) {
    switch (guard) {
      case Guard::none:  // read, add, write back: another agent's write in between is lost
        shared.counter.store(shared.counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        break;
      case Guard::lock: {
        LockGuard hold(lock);
        shared.counter.store(shared.counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        break;
      }
      case Guard::synchronized:
        synchronized.with_lock([](long& n) { ++n; });
        break;
      case Guard::atomic:
        shared.counter.fetch_add(1, std::memory_order_relaxed);
        break;
    }
  }
}

struct Run {
  long counted = 0;
  double ns_per_increment = 0;
};

template <class Agent, class... AgentOptions>
Run run(Guard guard, long times, AgentOptions... options) {
  SharedMemory memory(sizeof(Shared));
  auto& shared = *new (memory.data()) Shared;
  Lock lock;
  Synchronized<long> synchronized(0L);
  const auto start = std::chrono::steady_clock::now();
  std::vector<Agent> agents;
  for (int i = 0; i < 2; ++i) agents.emplace_back(options..., &add, memory, lock, synchronized, guard, times);
  for (auto& agent : agents) agent.start();
  for (auto& agent : agents) agent.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const long counted = guard == Guard::synchronized ? synchronized.copy() : shared.counter.load();
  return {counted, seconds * 1e9 / static_cast<double>(2 * times)};
}

}  // namespace

Section race(const Options& options, Progress& progress) {
  progress.plan(8);
  const long times = options.quick ? 100'000 : 1'000'000;
  const long expected = 2 * times;
  Section section;
  section.title = "Race condition: a shared counter";
  section.setup = "Two agents each add 1 to one counter in shared memory " + std::to_string(times) +
                  " times: two threads, then two processes (forkserver). Unguarded, each increment reads the "
                  "counter and writes it back; then the same under a tandem::Lock, as a "
                  "tandem::Synchronized<long>, and as one atomic add. Time includes starting the agents.";
  Table table{{"guard", "agents", "count", "lost updates", "ns per increment"}, {}};
  struct Variant {
    Guard guard;
    const char* name;
  };
  const Variant variants[] = {{Guard::none, "none"},
                              {Guard::lock, "tandem::Lock"},
                              {Guard::synchronized, "tandem::Synchronized<long>"},
                              {Guard::atomic, "std::atomic fetch_add"}};
  long lost_by_threads = 0, lost_by_processes = 0;
  double lock_ns = 0, atomic_ns = 0;
  for (const auto& variant : variants) {
    for (const bool processes : {false, true}) {
      progress.step(std::string(variant.name) + (processes ? ", two processes" : ", two threads"));
      const Run result = processes ? run<Process>(variant.guard, times, ProcessOptions{.start_method = StartMethod::forkserver})
                                   : run<Thread>(variant.guard, times);
      const long lost = expected - result.counted;
      if (variant.guard != Guard::none && lost != 0) {
        throw std::runtime_error(std::string("the counter guarded by ") + variant.name + " lost updates");
      }
      if (variant.guard == Guard::none) (processes ? lost_by_processes : lost_by_threads) = lost;
      if (variant.guard == Guard::lock && processes) lock_ns = result.ns_per_increment;
      if (variant.guard == Guard::atomic && processes) atomic_ns = result.ns_per_increment;
      table.rows.push_back({variant.name, processes ? "2 processes" : "2 threads", std::to_string(result.counted),
                            std::to_string(lost), fixed(result.ns_per_increment, 1)});
    }
  }
  section.tables.push_back(std::move(table));
  section.takeaways.push_back("Unguarded, " + std::to_string(expected) + " increments ended as " +
                              std::to_string(expected - lost_by_threads) + " with threads and " +
                              std::to_string(expected - lost_by_processes) +
                              " with processes: an increment that overlaps another is overwritten, whatever "
                              "the agent.");
  section.takeaways.push_back(
      "With a tandem::Lock, a Synchronized<long> or an atomic add the count was exact for both agents: the same "
      "Lock and Synchronized objects work between threads and between processes.");
  if (lock_ns > 0 && atomic_ns > 0) {
    section.takeaways.push_back("Between processes a locked increment cost " + fixed(lock_ns, 1) +
                                " ns and an atomic one " + fixed(atomic_ns, 1) +
                                " ns: for a lone counter an atomic is the cure; a lock (or Synchronized) is for "
                                "state that must change together.");
  }
  return section;
}

}  // namespace tandem::tour
