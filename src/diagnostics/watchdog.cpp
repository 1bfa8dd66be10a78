#include "diagnostics/watchdog.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "diagnostics/diagnostics_internal.hpp"
#include "pool/pool_watch.hpp"
#include "tandem/detail/futex.hpp"
#include "tandem/detail/process_identity.hpp"

namespace tandem::detail {
namespace {

// What the watchdog read of one agent in one look.
struct Sighting {
  AgentSlot* slot;
  std::uint64_t id;
  std::string name;
  std::vector<std::uint64_t> held;
  WaitKind waits = WaitKind::none;
  std::uint64_t key = 0;
  bool timed = false;
  std::int64_t since_ns = 0;
  std::uint32_t serial = 0;
  std::uint64_t running_task = 0;
};

using WaitId = std::pair<std::uint64_t, std::uint32_t>;  // (agent, wait serial)

// "1 task", "3 tasks".
std::string count_of(std::size_t count, const std::string& noun) {
  return std::to_string(count) + " " + noun + (count == 1 ? "" : "s");
}

// "350 ms" under a second, "2.4 s" from there.
std::string seconds_text(std::int64_t nanoseconds) {
  char text[32];
  if (nanoseconds < 1'000'000'000) {
    std::snprintf(text, sizeof text, "%.0f ms", static_cast<double>(nanoseconds) / 1e6);
  } else {
    std::snprintf(text, sizeof text, "%.1f s", static_cast<double>(nanoseconds) / 1e9);
  }
  return text;
}

// Frees the slot of an agent whose process died; its owner can no longer.
void reclaim(AgentSlot& slot) {
  std::uint32_t expected = kReady;
  if (!slot.state.compare_exchange_strong(expected, kClaimed, std::memory_order_acquire)) return;
  slot.wait_kind.store(0, std::memory_order_relaxed);
  slot.held_count.store(0, std::memory_order_relaxed);
  slot.occupant.store(0, std::memory_order_relaxed);
  slot.state.store(kFree, std::memory_order_release);
}

std::string thread_name(const AgentSlot& slot) {
  char name[17] = {};
  for (std::size_t word = 0; word < 2; ++word) {
    const std::uint64_t bits = slot.name_words[word].load(std::memory_order_relaxed);
    std::memcpy(name + word * 8, &bits, 8);
  }
  return name;
}

// Agent ids that have released waiters of (kind, key) before.
using Releasers = std::map<std::pair<std::uint32_t, std::uint64_t>, std::vector<std::uint64_t>>;
// When waiters of (kind, key) were last released.
using ReleaseTimes = std::map<std::pair<std::uint32_t, std::uint64_t>, std::int64_t>;

}  // namespace

struct Watchdog::Observer {
  DiagnosticsTable& table;
  diagnostics::Options options;
  std::set<WaitId> blocked_last_look;
  std::set<WaitId> reported_deadlocked;
  std::set<WaitId> reported_starving;
  std::map<WaitId, std::set<std::uint64_t>> holders_seen;
  struct PoolProgress {
    std::uint64_t completed = 0;
    Clock::time_point since;
    bool reported = false;
  };
  std::map<std::uint64_t, PoolProgress> pools;

  std::vector<Sighting> look_at_agents() {
    std::vector<Sighting> seen;
    std::map<std::int32_t, bool> process_alive;
    for (AgentSlot& slot : table.agents) {
      if (slot.state.load(std::memory_order_acquire) != kReady) continue;
      const std::uint32_t version = slot.version.load(std::memory_order_acquire);
      Sighting s{&slot, slot.occupant.load(std::memory_order_relaxed), thread_name(slot), {}, {}, 0, false, 0, 0, 0};
      const std::int32_t pid = agent_pid(s.id);
      auto [at, fresh] = process_alive.try_emplace(pid, true);
      if (fresh && pid != ::getpid()) {
        at->second = ProcessIdentity{pid, slot.start_time.load(std::memory_order_relaxed)}.alive();
      }
      if (!at->second) {
        reclaim(slot);
        continue;
      }
      const std::uint32_t held = std::min<std::uint32_t>(slot.held_count.load(std::memory_order_acquire),
                                                         kTrackedHeldLocks);
      for (std::uint32_t i = 0; i < held; ++i) s.held.push_back(slot.held[i].load(std::memory_order_relaxed));
      s.running_task = slot.running_task.load(std::memory_order_acquire);
      s.waits = static_cast<WaitKind>(slot.wait_kind.load(std::memory_order_acquire));
      if (s.waits != WaitKind::none) {
        s.key = slot.wait_key.load(std::memory_order_relaxed);
        s.timed = slot.wait_timed.load(std::memory_order_relaxed) != 0;
        s.since_ns = slot.wait_since_ns.load(std::memory_order_relaxed);
        s.serial = slot.wait_serial.load(std::memory_order_relaxed);
      }
      // A slot that changed hands while it was read mixes two agents: left for the next look.
      if (slot.version.load(std::memory_order_acquire) != version) continue;
      seen.push_back(std::move(s));
    }
    return seen;
  }

  ReleaseTimes look_at_release_times() const {
    ReleaseTimes times;
    for (const ReleaseStamp& stamp : table.release_stamps) {
      if (stamp.state.load(std::memory_order_acquire) != kReady) continue;
      times[{stamp.kind, stamp.key}] = stamp.last_ns.load(std::memory_order_acquire);
    }
    return times;
  }

  Releasers look_at_releasers() const {
    Releasers releasers;
    for (const ReleaserEntry& entry : table.releasers) {
      if (entry.state.load(std::memory_order_acquire) != kReady) continue;
      releasers[{entry.kind, entry.key}].push_back(entry.agent);
    }
    return releasers;
  }

  // Who can end agent i's wait: a lock's holders, a future's task runner, or those who released
  // such waits before.
  std::vector<std::uint64_t> releasers_of(const std::vector<Sighting>& agents, std::size_t i,
                                          const Releasers& releasers) const {
    const Sighting& waiter = agents[i];
    std::vector<std::uint64_t> who;
    if (waiter.waits == WaitKind::lock) {
      for (const Sighting& other : agents) {
        if (other.id != waiter.id && std::find(other.held.begin(), other.held.end(), waiter.key) != other.held.end()) {
          who.push_back(other.id);
        }
      }
      return who;
    }
    if (waiter.waits == WaitKind::future) {
      for (const Sighting& other : agents) {
        if (other.id != waiter.id && other.running_task == waiter.key) who.push_back(other.id);
      }
      return who;
    }
    if (const auto at = releasers.find({static_cast<std::uint32_t>(waiter.waits), waiter.key}); at != releasers.end()) {
      for (const std::uint64_t id : at->second) {
        if (id != waiter.id) who.push_back(id);
      }
    }
    return who;
  }

  // The agents that can never go on: every one waits, untimed, for agents of the same set.
  // Sound edges are a lock's holders and a future's task runner. A queue or condition waiter
  // waits for whoever will put or notify, which nobody can know: it counts as stuck only when
  // every agent that has released such waits before is stuck, none released it since its wait
  // began, and no tracked agent anywhere is running. Any agent that runs, waits with a
  // timeout, has waited less than two looks, or waits for someone the tables do not know is
  // taken to be able to go on.
  std::vector<bool> stuck_agents(const std::vector<Sighting>& agents, const Releasers& releasers,
                                 const ReleaseTimes& release_times, Clock::time_point now) const {
    const std::int64_t settled_before = (now - 2 * options.watchdog_period).time_since_epoch().count();
    std::vector<bool> can_go_on(agents.size());
    bool anyone_running = false;
    for (std::size_t i = 0; i < agents.size(); ++i) {
      const Sighting& s = agents[i];
      can_go_on[i] = s.waits == WaitKind::none || s.timed || s.since_ns > settled_before;
      anyone_running = anyone_running || s.waits == WaitKind::none || s.timed;
      if (const auto at = release_times.find({static_cast<std::uint32_t>(s.waits), s.key});
          at != release_times.end() && at->second >= s.since_ns) {
        can_go_on[i] = true;
      }
    }
    const bool releasers_complete = table.releasers_overflowed.load(std::memory_order_relaxed) == 0;
    for (bool changed = true; changed;) {
      changed = false;
      for (std::size_t i = 0; i < agents.size(); ++i) {
        if (can_go_on[i]) continue;
        const bool sound = agents[i].waits == WaitKind::lock || agents[i].waits == WaitKind::future;
        const auto who = releasers_of(agents, i, releasers);
        bool freed = who.empty() || (!sound && (anyone_running || !releasers_complete));
        for (const std::uint64_t id : who) {
          const auto at = std::find_if(agents.begin(), agents.end(), [&](const Sighting& s) { return s.id == id; });
          if (at == agents.end() || can_go_on[static_cast<std::size_t>(at - agents.begin())]) freed = true;
        }
        if (freed) can_go_on[i] = changed = true;
      }
    }
    std::vector<bool> stuck(agents.size());
    for (std::size_t i = 0; i < agents.size(); ++i) stuck[i] = !can_go_on[i];
    return stuck;
  }

  std::string name_of(const std::vector<Sighting>& agents, std::uint64_t id) const {
    const auto at = std::find_if(agents.begin(), agents.end(), [&](const Sighting& s) { return s.id == id; });
    return describe_agent(id, at == agents.end() ? std::string_view() : std::string_view(at->name));
  }

  std::string list_of(const std::vector<Sighting>& agents, const std::vector<std::uint64_t>& ids) const {
    std::string text;
    for (const std::uint64_t id : ids) text += (text.empty() ? "" : ", ") + name_of(agents, id);
    return text;
  }

  std::string wait_text(const std::vector<Sighting>& agents, std::size_t i, const Releasers& releasers,
                        Clock::time_point now) const {
    const Sighting& s = agents[i];
    const std::string object = quoted(object_name(table, s.key, s.waits));
    const std::string who = list_of(agents, releasers_of(agents, i, releasers));
    std::string text = describe_agent(s.id, s.name);
    switch (s.waits) {
      case WaitKind::lock: text += " waits for lock " + object + ", held by " + who; break;
      case WaitKind::queue_get: text += " waits to get from queue " + object + ", which only " + who + " put into"; break;
      case WaitKind::queue_put: text += " waits to put into full queue " + object + ", which only " + who + " get from"; break;
      case WaitKind::condition: text += " waits on condition " + object + ", which only " + who + " notify"; break;
      case WaitKind::future: text += " waits for the future of a task that runs on " + who; break;
      case WaitKind::none: break;
    }
    text += " (for " + seconds_text(now.time_since_epoch().count() - s.since_ns) + ")";
    if (!s.held.empty()) {
      text += "; it holds";
      for (const std::uint64_t key : s.held) {
        text += ' ';
        text += quoted(object_name(table, key, WaitKind::lock));
      }
    }
    return text + "\n";
  }

  void look_for_deadlock(const std::vector<Sighting>& agents, const Releasers& releasers,
                         const ReleaseTimes& release_times, Clock::time_point now) {
    const std::vector<bool> stuck = stuck_agents(agents, releasers, release_times, now);
    std::set<WaitId> blocked;
    bool settled = true;
    bool news = false;
    for (std::size_t i = 0; i < agents.size(); ++i) {
      if (!stuck[i]) continue;
      const WaitId wait{agents[i].id, agents[i].serial};
      blocked.insert(wait);
      settled = settled && blocked_last_look.contains(wait);
      news = news || !reported_deadlocked.contains(wait);
    }
    blocked_last_look = blocked;
    // Stuck in two looks in a row, in the same waits: not a snapshot taken mid-handover.
    if (blocked.empty() || !settled || !news) return;
    reported_deadlocked.insert(blocked.begin(), blocked.end());
    std::string text = "deadlock: " + std::to_string(blocked.size()) +
                       " agents wait for each other and none of them can go on\n";
    std::set<std::int32_t> processes;
    for (std::size_t i = 0; i < agents.size(); ++i) {
      if (!stuck[i]) continue;
      text += "  " + wait_text(agents, i, releasers, now);
      processes.insert(agent_pid(agents[i].id));
    }
    emit_finding(table, diagnostics::Finding::deadlock, text);
    if (options.mode != diagnostics::Mode::abort) return;
    // The program would hang for good: stop the other processes in the cycle, then this one.
    for (const std::int32_t pid : processes) {
      if (pid != ::getpid()) ::kill(pid, SIGABRT);
    }
    std::fflush(nullptr);
    std::abort();
  }

  void look_for_starvation(const std::vector<Sighting>& agents, const Releasers& releasers, Clock::time_point now) {
    const std::int64_t threshold = std::chrono::nanoseconds(options.starvation_threshold).count();
    std::map<WaitId, std::set<std::uint64_t>> still_waiting;
    for (std::size_t i = 0; i < agents.size(); ++i) {
      const Sighting& s = agents[i];
      if (s.waits != WaitKind::lock) continue;
      const WaitId wait{s.id, s.serial};
      auto& seen = still_waiting[wait];
      if (const auto before = holders_seen.find(wait); before != holders_seen.end()) seen = before->second;
      for (const std::uint64_t holder : releasers_of(agents, i, releasers)) seen.insert(holder);
      const std::int64_t waited = now.time_since_epoch().count() - s.since_ns;
      if (waited < threshold || reported_starving.contains(wait) || reported_deadlocked.contains(wait)) continue;
      reported_starving.insert(wait);
      std::string text = "starvation: " + describe_agent(s.id, s.name) + " has waited " + seconds_text(waited) +
                         " for lock " + quoted(object_name(table, s.key, WaitKind::lock)) + " and still waits";
      text += seen.empty() ? "\n" : "; held meanwhile by " + list_of(agents, {seen.begin(), seen.end()}) + "\n";
      text += "  A lock that is released and retaken at once can be won by its holder again and again; "
              "tandem::FairLock hands it over in arrival order.\n";
      emit_finding(table, diagnostics::Finding::starvation, text);
    }
    holders_seen = std::move(still_waiting);
  }

  void look_at_pools(Clock::time_point now) {
    std::map<std::uint64_t, PoolProgress> next;
    for (const auto& [id, activity] : probe_watched_pools()) {
      PoolProgress progress = pools.contains(id) ? pools[id] : PoolProgress{activity.completed, now, false};
      const bool saturated = activity.workers > 0 && activity.busy >= activity.workers;
      if (activity.completed != progress.completed || !saturated) progress = {activity.completed, now, false};
      if (!progress.reported && now - progress.since >= options.stall_threshold) {
        progress.reported = true;
        const auto idle_ns = std::chrono::nanoseconds(now - progress.since).count();
        emit_finding(table, diagnostics::Finding::stall,
                     "stall: a " + activity.pool + " of " + count_of(activity.workers, "worker") + " has finished "
                     "no task for " + seconds_text(idle_ns) + " while all of them are busy (" +
                     count_of(activity.queued, "task") + " queued, " + std::to_string(activity.completed) +
                     " finished so far)\n  Tasks that retry without progress (a livelock: use tandem::Backoff), "
                     "that wait for each other, or that run longer than the threshold.\n");
      }
      next[id] = progress;
    }
    pools = std::move(next);
  }

  void look() {
    const Clock::time_point now = Clock::now();
    const std::vector<Sighting> agents = look_at_agents();
    const Releasers releasers = look_at_releasers();
    look_for_deadlock(agents, releasers, look_at_release_times(), now);
    look_for_starvation(agents, releasers, now);
    look_at_pools(now);
  }
};

Watchdog::Watchdog(DiagnosticsTable& table, const diagnostics::Options& options)
    : observer_(std::make_unique<Observer>(Observer{table, options, {}, {}, {}, {}, {}})) {
  thread_ = std::jthread([observer = observer_.get(), period = options.watchdog_period](std::stop_token stop) {
    ::pthread_setname_np(::pthread_self(), "tandem-watchdog");
    std::mutex mutex;
    std::condition_variable_any wake;
    std::unique_lock lock(mutex);
    for (;;) {
      wake.wait_for(lock, stop, period, [] { return false; });
      if (stop.stop_requested()) return;
      observer->look();
    }
  });
}

Watchdog::~Watchdog() = default;

}  // namespace tandem::detail
